/* The seed case's server: reads the request until end of file, then answers.
 *
 *   ./server [PORT]
 *
 * It answers only after read() returns 0, i.e. after the client's FIN: a
 * client that never calls shutdown(SHUT_WR) (or close) never gets an answer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5555;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    if (listen(lfd, 8) < 0) { perror("listen"); return 1; }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) { perror("accept"); return 1; }
    char buf[4096];
    long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    if (n < 0) { perror("read"); return 1; }
    char answer[64];
    int len = snprintf(answer, sizeof answer, "got %ld bytes\n", total);
    write(fd, answer, len);
    close(fd);
    close(lfd);
    return 0;
}
