/* 10,000 short TCP connections on loopback, for scripts/bench-exec.
 *
 *   ./bench_connect [N] [PORT]
 *
 * One process, one thread: connect, accept, one byte each way, close both
 * ends. About ten socket calls per connection, so the cost of stopping at
 * each one dominates any tracer's overhead.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    int port = argc > 2 ? atoi(argv[2]) : 5600;
    double t0 = now();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    if (listen(lfd, 128) < 0) { perror("listen"); return 1; }
    char c = 'x';
    for (int i = 0; i < n; i++) {
        int cfd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(cfd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        int sfd = accept(lfd, NULL, NULL);
        if (sfd < 0) { perror("accept"); return 1; }
        write(cfd, &c, 1);
        read(sfd, &c, 1);
        write(sfd, &c, 1);
        read(cfd, &c, 1);
        close(cfd);
        close(sfd);
    }
    close(lfd);
    /* The program's own elapsed time, whatever traces it (bench-exec reads it). */
    fprintf(stderr, "%d connections in %.3f s\n", n, now() - t0);
    /* Its own CPU time: what a tracer adds inside the program's system
     * calls, apart from the time it waited for a CPU. */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "cpu %.3f s\n", ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                                      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 0;
}
