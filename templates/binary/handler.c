/*
 * An ironfaas `binary` function: a small HTTP/1.1 server in C (POSIX sockets, pthreads).
 *
 * Write your code in handle() below. ironfaas compiles this file into ./handler at build time
 * (cc -O2 -Wall -pthread -o handler handler.c); to try it locally:
 *
 *     cc -O2 -Wall -pthread -o handler handler.c && PORT=8080 ./handler
 *     curl -d hi 'localhost:8080/some/path?x=1'
 *
 * (delete that local ./handler before `ironfaas build`: a `handler` in the folder is deployed
 * as it is and handler.c is then not compiled).
 *
 * The server: one thread per connection, keep-alive, Content-Length and chunked request
 * bodies, Expect: 100-continue, every response with Content-Length. It listens on
 * $HOST:$PORT (default 127.0.0.1:8080), or on the Unix socket $IRONFAAS_SOCKET if that is set,
 * then writes one byte to the descriptor in $IRONFAAS_READY_FD (if set) so the platform
 * routes to it at once. GET /_/health answers 200 OK (503 while draining). On SIGTERM or
 * SIGINT it stops accepting, finishes the requests in flight and exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 65536                 /* request line + header fields */
#define LINE_MAX_CHUNK 4096            /* a chunk-size or trailer line */
#define HEADERS_MAX 100
#define BODY_MAX (64L * 1024 * 1024)   /* larger request bodies get 413 */

struct header {
    const char *name;
    const char *value;
};

struct request {
    const char *method;    /* "GET", "POST", ... */
    const char *path;      /* "/some/path" (not percent-decoded) */
    const char *query;     /* "x=1&y=2" without the '?', "" if none */
    struct header headers[HEADERS_MAX];
    int header_count;
    const char *body;      /* body_len bytes (a chunked body is decoded); NUL-terminated */
    size_t body_len;
};

struct response {
    int status;
    const char *content_type; /* NULL: no Content-Type */
    char *body;               /* malloc'd; freed after sending */
    size_t body_len;
};

/* The value of request header `name` (any case), or NULL. */
static const char *header(const struct request *req, const char *name)
{
    for (int i = 0; i < req->header_count; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* Sets the response: status, type and a printf-formatted body. */
static void respond(struct response *res, int status, const char *content_type,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    free(res->body);
    res->body = malloc(n > 0 ? (size_t)n + 1 : 1);
    res->body_len = 0;
    if (res->body && n > 0) {
        va_start(ap, fmt);
        vsnprintf(res->body, (size_t)n + 1, fmt, ap);
        va_end(ap);
        res->body_len = (size_t)n;
    }
    res->status = status;
    res->content_type = content_type;
}

/* ---- Your function: called once per request, on the connection's thread. ---- */
static void handle(const struct request *req, struct response *res)
{
    const char *q = req->query[0] ? "?" : "";
    if (req->body_len > 0)
        respond(res, 200, "text/plain; charset=utf-8", "%s %s%s%s\nbody: %zu bytes\n",
                req->method, req->path, q, req->query, req->body_len);
    else
        respond(res, 200, "text/plain; charset=utf-8", "%s %s%s%s\n",
                req->method, req->path, q, req->query);
}

/* ---- The server. ---- */

static int signal_pipe[2] = {-1, -1};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static int in_flight;   /* requests being read, handled or answered; under lock */
static int draining;    /* set on SIGTERM; under lock */

static void on_signal(int sig)
{
    int saved = errno;
    ssize_t n = write(signal_pipe[1], "x", 1);
    (void)n;
    (void)sig;
    errno = saved;
}

static void enter_request(void)
{
    pthread_mutex_lock(&lock);
    in_flight++;
    pthread_mutex_unlock(&lock);
}

static void leave_request(void)
{
    pthread_mutex_lock(&lock);
    if (--in_flight == 0)
        pthread_cond_broadcast(&idle_cond);
    pthread_mutex_unlock(&lock);
}

static int is_draining(void)
{
    pthread_mutex_lock(&lock);
    int d = draining;
    pthread_mutex_unlock(&lock);
    return d;
}

/* A connection and its read buffer. Data is buf[start, end); the buffer is compacted down
 * to `floor`, which protects the current request's head while its body is read. */
struct conn {
    int fd;
    size_t start, end, floor;
    char buf[HEAD_MAX + 2 * LINE_MAX_CHUNK];
};

/* Reads more into the buffer: > 0 bytes read, 0 at end of stream, -1 on error. */
static ssize_t conn_fill(struct conn *c)
{
    if (c->start == c->end)
        c->start = c->end = c->floor;
    if (c->end == sizeof c->buf && c->start > c->floor) {
        memmove(c->buf + c->floor, c->buf + c->start, c->end - c->start);
        c->end -= c->start - c->floor;
        c->start = c->floor;
    }
    if (c->end == sizeof c->buf)
        return -1;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->end, sizeof c->buf - c->end, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->end += (size_t)n;
        return n;
    }
}

/* Copies the next n bytes of the stream to dst: 0, or -1 if the stream ends first. */
static int conn_read(struct conn *c, char *dst, size_t n)
{
    size_t have = c->end - c->start;
    if (have > n)
        have = n;
    memcpy(dst, c->buf + c->start, have);
    c->start += have;
    while (have < n) {
        ssize_t r = recv(c->fd, dst + have, n - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return 0;
}

/* The next line (NUL-terminated, line end removed) in *line: 0, or -1 on error/too long. */
static int conn_line(struct conn *c, char **line)
{
    for (;;) {
        char *nl = memchr(c->buf + c->start, '\n', c->end - c->start);
        if (nl) {
            *line = c->buf + c->start;
            c->start = (size_t)(nl - c->buf) + 1;
            if (nl > *line && nl[-1] == '\r')
                nl--;
            *nl = '\0';
            return 0;
        }
        if (c->end - c->start >= LINE_MAX_CHUNK || conn_fill(c) <= 0)
            return -1;
    }
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}

/* Sends a response; `head_only` for HEAD. Returns 0, or -1 if the peer is gone. */
static int send_response(int fd, const struct response *res, int keep_alive, int http10,
                         int head_only)
{
    char head[512];
    int no_body = res->status == 204 || res->status == 304;
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", res->status, reason(res->status));
    if (res->content_type)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n",
                      res->content_type);
    if (!no_body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n",
                      res->body_len);
    if (!keep_alive)
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: close\r\n");
    else if (http10)
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: keep-alive\r\n");
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    if (n >= (int)sizeof head)
        return -1;
    if (send_all(fd, head, (size_t)n) < 0)
        return -1;
    if (!head_only && !no_body && res->body_len > 0)
        return send_all(fd, res->body, res->body_len);
    return 0;
}

static void send_error(int fd, int status, const char *message)
{
    struct response res = {0};
    respond(&res, status, "text/plain; charset=utf-8", "%s\n", message);
    send_response(fd, &res, 0, 0, 0);
    free(res.body);
}

/* Whether the comma-separated header value contains `token` (any case). */
static int has_token(const char *value, const char *token)
{
    size_t len = strlen(token);
    while (value && *value) {
        while (*value == ' ' || *value == '\t' || *value == ',')
            value++;
        size_t n = strcspn(value, ",");
        size_t m = n;
        while (m > 0 && (value[m - 1] == ' ' || value[m - 1] == '\t'))
            m--;
        if (m == len && strncasecmp(value, token, len) == 0)
            return 1;
        value += n;
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Finds the end of the request head in the buffer: its length, or 0 if not there yet. */
static size_t head_length(const struct conn *c)
{
    for (size_t i = c->start; i < c->end; i++) {
        if (c->buf[i] != '\n')
            continue;
        if (i + 1 < c->end && c->buf[i + 1] == '\n')
            return i + 2 - c->start;
        if (i + 2 < c->end && c->buf[i + 1] == '\r' && c->buf[i + 2] == '\n')
            return i + 3 - c->start;
    }
    return 0;
}

/* Reads a chunked body into *body (malloc'd): its length, -1 if the peer is gone or the
 * body is malformed (*status set), -2 if it is too large. */
static long read_chunked(struct conn *c, char **body, int *status)
{
    size_t len = 0, cap = 0;
    char *line;
    *status = 400;
    for (;;) {
        if (conn_line(c, &line) < 0)
            return -1;
        size_t size = 0;
        int digits = 0;
        char *p = line;
        for (; *p; p++, digits++) {
            int d = *p >= '0' && *p <= '9' ? *p - '0'
                  : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
                  : *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;
            if (d < 0)
                break;
            if (digits == 15)
                return -1;
            size = size * 16 + (size_t)d;
        }
        if (digits == 0 || (*p && *p != ';' && *p != ' ' && *p != '\t'))
            return -1;
        if (size == 0)
            break;
        if (size > (size_t)BODY_MAX || len + size > (size_t)BODY_MAX) {
            *status = 413;
            return -2;
        }
        if (len + size + 1 > cap) {
            cap = (len + size + 1) * 2;
            char *grown = realloc(*body, cap);
            if (!grown)
                return -1;
            *body = grown;
        }
        if (conn_read(c, *body + len, size) < 0 || conn_line(c, &line) < 0 || line[0])
            return -1;
        len += size;
    }
    for (int i = 0;; i++) { /* trailer fields, dropped */
        if (i > HEADERS_MAX || conn_line(c, &line) < 0)
            return -1;
        if (!line[0])
            break;
    }
    if (!*body && !(*body = malloc(1)))
        return -1;
    (*body)[len] = '\0';
    return (long)len;
}

/* Serves one request. Returns 1 to keep the connection, 0 to close it. */
static int serve_one(struct conn *c)
{
    struct request req;
    struct response res = {0};
    char *body = NULL;
    int keep_alive = 0, status = 400;
    const char *error = "malformed request";

    /* Leftover (pipelined) bytes go to the start of the buffer; then read the head. */
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    c->floor = 0;
    for (;;) { /* blank lines before a request line are ignored */
        while (c->start < c->end && (c->buf[c->start] == '\r' || c->buf[c->start] == '\n'))
            c->start++;
        if (c->start < c->end)
            break;
        if (conn_fill(c) <= 0)
            return 0;
    }
    size_t head_len;
    while ((head_len = head_length(c)) == 0) {
        if (c->end - c->start >= HEAD_MAX) {
            send_error(c->fd, 431, "request head too large");
            return 0;
        }
        if (conn_fill(c) <= 0)
            return 0;
    }
    if (head_len > HEAD_MAX) {
        send_error(c->fd, 431, "request head too large");
        return 0;
    }
    char *head = c->buf + c->start;
    head[head_len - 1] = '\0';
    c->start += head_len;
    c->floor = c->start;

    /* Request line: METHOD SP TARGET SP VERSION */
    char *line_end = strchr(head, '\n');
    if (!line_end)
        goto bad;
    *line_end = '\0';
    if (line_end > head && line_end[-1] == '\r')
        line_end[-1] = '\0';
    char *method = head, *target = strchr(method, ' ');
    if (!target || target == method)
        goto bad;
    *target++ = '\0';
    char *version = strchr(target, ' ');
    if (!version || version == target || strchr(version + 1, ' '))
        goto bad;
    *version++ = '\0';
    int http10 = strcmp(version, "HTTP/1.0") == 0;
    if (!http10 && strcmp(version, "HTTP/1.1") != 0) {
        if (strncmp(version, "HTTP/", 5) == 0) {
            status = 505;
            error = "only HTTP/1.0 and HTTP/1.1 are supported";
        }
        goto bad;
    }
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    req.method = method;
    req.path = target;
    req.query = query ? query : "";

    /* Header fields */
    req.header_count = 0;
    for (char *line = line_end + 1; *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        else
            next = line + strlen(line);
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0)
            break;
        char *colon = strchr(line, ':');
        if (!colon || colon == line || strcspn(line, " \t") < (size_t)(colon - line))
            goto bad;
        if (req.header_count == HEADERS_MAX) {
            status = 431;
            error = "too many header fields";
            goto bad;
        }
        *colon = '\0';
        req.headers[req.header_count].name = line;
        req.headers[req.header_count].value = trim(colon + 1);
        req.header_count++;
        line = next;
    }

    const char *connection = header(&req, "connection");
    keep_alive = http10 ? has_token(connection, "keep-alive") : !has_token(connection, "close");

    /* Body framing */
    const char *te = header(&req, "transfer-encoding");
    int chunked = 0;
    long length = 0;
    if (te) {
        if (strcasecmp(trim((char *)te), "chunked") != 0) {
            status = 501;
            error = "unsupported Transfer-Encoding";
            goto bad;
        }
        chunked = 1;
        if (header(&req, "content-length"))
            keep_alive = 0;
    } else {
        int seen = 0;
        for (int i = 0; i < req.header_count; i++) {
            if (strcasecmp(req.headers[i].name, "content-length") != 0)
                continue;
            const char *v = req.headers[i].value;
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (*end || errno || v[0] < '0' || v[0] > '9' || (seen && n != length)) {
                error = "invalid Content-Length";
                goto bad;
            }
            length = n;
            seen = 1;
        }
        if (length > BODY_MAX) {
            status = 413;
            error = "request body too large";
            goto bad;
        }
    }
    const char *expect = header(&req, "expect");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) {
            status = 417;
            error = "unsupported Expect";
            goto bad;
        }
        if (!http10 && (chunked || length > 0)
            && send_all(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            goto gone;
    }
    if (chunked) {
        long n = read_chunked(c, &body, &status);
        if (n == -2) {
            error = "request body too large";
            goto bad;
        }
        if (n < 0) {
            error = "malformed chunked body";
            goto bad;
        }
        req.body_len = (size_t)n;
    } else {
        body = malloc((size_t)length + 1);
        if (!body || conn_read(c, body, (size_t)length) < 0)
            goto gone;
        body[length] = '\0';
        req.body_len = (size_t)length;
    }
    req.body = body;

    int head_only = strcmp(req.method, "HEAD") == 0;
    if ((head_only || strcmp(req.method, "GET") == 0) && strcmp(req.path, "/_/health") == 0) {
        if (is_draining()) {
            respond(&res, 503, "text/plain; charset=utf-8", "Draining\n");
            keep_alive = 0;
        } else {
            respond(&res, 200, "text/plain; charset=utf-8", "OK");
        }
    } else {
        res.status = 200;
        handle(&req, &res);
    }
    if (is_draining())
        keep_alive = 0;
    if (send_response(c->fd, &res, keep_alive, http10, head_only) < 0)
        keep_alive = 0;
    free(res.body);
    free(body);
    return keep_alive;

bad:
    send_error(c->fd, status, error);
gone:
    free(res.body);
    free(body);
    return 0;
}

static void *serve_connection(void *arg)
{
    struct conn *c = arg;
    for (;;) {
        /* Wait for the first byte of the next request; from then on it is in flight. */
        if (c->start == c->end) {
            c->floor = 0;
            if (conn_fill(c) <= 0)
                break;
        }
        enter_request();
        int keep = serve_one(c);
        leave_request();
        if (!keep)
            break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

/* Binds $IRONFAAS_SOCKET if set, else $HOST:$PORT. Returns the listening socket or -1. */
static int listen_socket(const char **socket_path)
{
    const char *path = getenv("IRONFAAS_SOCKET");
    int fd;
    if (path && *path) {
        struct sockaddr_un addr = {0};
        addr.sun_family = AF_UNIX;
        if (strlen(path) >= sizeof addr.sun_path) {
            fprintf(stderr, "handler: socket path too long: %s\n", path);
            return -1;
        }
        strcpy(addr.sun_path, path);
        unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            perror("handler: bind");
            return -1;
        }
        *socket_path = path;
        fprintf(stderr, "handler: listening on unix:%s\n", path);
    } else {
        const char *host = getenv("HOST"), *port = getenv("PORT");
        if (!host || !*host)
            host = "127.0.0.1";
        if (!port || !*port)
            port = "8080";
        struct addrinfo hints = {0}, *ai;
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        int err = getaddrinfo(host, port, &hints, &ai);
        if (err) {
            fprintf(stderr, "handler: cannot listen on %s:%s: %s\n", host, port, gai_strerror(err));
            return -1;
        }
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
            || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            perror("handler: bind");
            freeaddrinfo(ai);
            return -1;
        }
        freeaddrinfo(ai);
        fprintf(stderr, "handler: listening on %s:%s\n", host, port);
    }
    if (listen(fd, SOMAXCONN) < 0) {
        perror("handler: listen");
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int main(void)
{
    const char *ready = getenv("IRONFAAS_READY_FD");
    int ready_fd = ready ? atoi(ready) : -1;
    unsetenv("IRONFAAS_READY_FD");

    if (pipe(signal_pipe) < 0) {
        perror("handler: pipe");
        return 1;
    }
    fcntl(signal_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(signal_pipe[1], F_SETFD, FD_CLOEXEC);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *socket_path = NULL;
    int lfd = listen_socket(&socket_path);
    if (lfd < 0)
        return 1;
    int tcp = socket_path == NULL;

    if (ready_fd > 2) { /* tell the platform: accepting connections */
        ssize_t n = write(ready_fd, "1", 1);
        (void)n;
        close(ready_fd);
    }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    struct pollfd fds[2] = {{.fd = lfd, .events = POLLIN}, {.fd = signal_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("handler: poll");
            return 1;
        }
        if (fds[1].revents)
            break;
        if (!fds[0].revents)
            continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        if (tcp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        struct conn *c = malloc(sizeof *c);
        pthread_t thread;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->start = c->end = c->floor = 0;
        if (pthread_create(&thread, &attr, serve_connection, c) != 0) {
            close(fd);
            free(c);
        }
    }

    /* SIGTERM/SIGINT: stop accepting, finish the requests in flight, exit 0. */
    pthread_mutex_lock(&lock);
    draining = 1;
    pthread_mutex_unlock(&lock);
    close(lfd);
    if (socket_path)
        unlink(socket_path);
    pthread_mutex_lock(&lock);
    while (in_flight > 0)
        pthread_cond_wait(&idle_cond, &lock);
    pthread_mutex_unlock(&lock);
    fflush(stdout);
    fflush(stderr);
    return 0;
}
