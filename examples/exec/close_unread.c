/* Closing a socket with data still unread sends an RST, not a FIN.
 *
 *   ./close_unread [PORT]
 *
 * One process plays both ends: the server end writes an answer, the client
 * end closes without reading it. The kernel aborts the connection (RFC 2525,
 * 2.17; its reason: TCP_ABORT_ON_CLOSE) and the server's next read fails
 * with ECONNRESET.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 5556;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    if (listen(lfd, 8) < 0) { perror("listen"); return 1; }
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cfd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
    int sfd = accept(lfd, NULL, NULL);
    if (sfd < 0) { perror("accept"); return 1; }
    write(sfd, "answer\n", 7);
    usleep(100 * 1000); /* the answer reaches the client's receive queue */
    close(cfd);         /* unread: RST */
    char buf[64];
    if (read(sfd, buf, sizeof buf) < 0)
        fprintf(stderr, "server read: %s\n", strerror(errno));
    close(sfd);
    close(lfd);
    return 0;
}
