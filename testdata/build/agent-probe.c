/* agent-probe: asks the SSH agent at $SSH_AUTH_SOCK for its identities
 * (SSH2_AGENTC_REQUEST_IDENTITIES) and prints "agent-keys=N comment=C" for
 * the first one. Built static (cc -static) so it runs in the busybox test
 * image; the RUN --mount=type=ssh tests use it to prove the forwarded socket
 * answers. Exit 2: no socket/connect failed, 3: bad answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_full(int fd, unsigned char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static unsigned long be32(const unsigned char *p) {
    return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | p[3];
}

int main(void) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { fprintf(stderr, "agent-probe: SSH_AUTH_SOCK is not set\n"); return 2; }
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("agent-probe: connect");
        return 2;
    }
    const unsigned char req[5] = {0, 0, 0, 1, 11};
    if (write(fd, req, sizeof req) != (ssize_t)sizeof req) { perror("agent-probe: write"); return 2; }
    unsigned char hdr[4];
    if (read_full(fd, hdr, 4) != 0) { fprintf(stderr, "agent-probe: no answer\n"); return 3; }
    unsigned long len = be32(hdr);
    if (len < 5 || len > 1 << 20) { fprintf(stderr, "agent-probe: bad length\n"); return 3; }
    unsigned char *msg = malloc(len);
    if (!msg || read_full(fd, msg, len) != 0 || msg[0] != 12) {
        fprintf(stderr, "agent-probe: not an identities answer\n");
        return 3;
    }
    unsigned long n = be32(msg + 1);
    printf("agent-keys=%lu", n);
    if (n > 0) {
        unsigned long off = 5, blob = be32(msg + off);
        off += 4 + blob;
        unsigned long clen = be32(msg + off);
        off += 4;
        if (off + clen > len) { fprintf(stderr, "agent-probe: truncated\n"); return 3; }
        printf(" comment=%.*s", (int)clen, (const char *)(msg + off));
    }
    printf("\n");
    return 0;
}
