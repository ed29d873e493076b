/* The seed case's client: sends a request and waits for the answer.
 *
 *   ./client [PORT] [--shut-wr] [--dup-close]
 *
 * With --shut-wr it calls shutdown(fd, SHUT_WR) after the request: the FIN
 * tells the server the request is complete, and the answer comes back on
 * the half-closed connection. Without it both sides wait for each other
 * forever (run it under `hc-trace exec --timeout 3`).
 * With --dup-close it first dup()s the socket and closes the copy: that
 * close() puts nothing on the wire, since the socket is still open.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = 5555, shut_wr = 0, dup_close = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shut-wr")) shut_wr = 1;
        else if (!strcmp(argv[i], "--dup-close")) dup_close = 1;
        else port = atoi(argv[i]);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    if (dup_close) {
        int copy = dup(fd);
        close(copy);
    }
    const char req[] = "GET /answer\n";
    write(fd, req, sizeof req - 1);
    if (shut_wr)
        shutdown(fd, SHUT_WR);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, n, stdout);
    close(fd);
    return 0;
}
