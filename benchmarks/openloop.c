/* Open-loop HTTP/1.1 load generator for benchmarks/loadgen.py (issue 16's overload and soak runs).
 *
 * Why C: the asyncio generator cannot send 3,000+ callbacks/s on the 2-core benchmark machine without
 * falling half a second behind its schedule and taking the cores the server needs. This one sends on
 * a fixed schedule from one thread on epoll, at a few microseconds of CPU per request.
 *
 *   openloop REQUESTS_FILE HOST PORT RATE SECONDS MAX_CONNECTIONS TIMEOUT_S
 *
 * REQUESTS_FILE: for each request "<length>\n" then that many bytes of a complete raw HTTP request.
 * Request i is due at t0 + i / RATE whatever happened to the earlier ones; it is sent on an idle
 * keep-alive connection, on a new one while fewer than MAX_CONNECTIONS are open, or else it waits
 * (in order) for a connection to come back, as a client with a bounded pool does. Its latency counts
 * from its due time, so waiting for a connection is latency, not a slower schedule (no coordinated
 * omission). A request unanswered TIMEOUT_S after its due time is a time-out; its connection is
 * closed. Prints one line: OPENLOOP {json}. "lag" is how late the generator itself noticed a request
 * was due (its own accuracy); replies are timed when epoll reports them (1 ms timer resolution).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER 65536
#define IM_BUDGET_MS 2000.0

enum state { UNUSED, CONNECTING, IDLE, BUSY };

struct conn {
    int fd;
    enum state state;
    int in_idle_stack; /* pushed at most once: a closed, reopened connection may still be in it */
    long request;      /* the request in flight (BUSY, CONNECTING) */
    size_t written;    /* bytes of it sent so far */
    size_t received;   /* bytes of the reply read so far */
    char buffer[READ_BUFFER + 1];
};

static struct { const char *data; size_t length; } *requests;
static long n_requests;
static struct conn *conns;
static int max_conns, open_conns, peak_conns, epfd;
static int *idle_stack, n_idle;
static double t0, rate, timeout_s;
static struct sockaddr_in address;

static double *latencies;   /* ms, of answered requests */
static long answered, non_2xx, socket_errors, timeouts, over_budget;
static double lag_max, lag_sum;
static long lag_over_1ms, lag_over_10ms;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double due(long i) { return t0 + i / rate; }

static void die(const char *what) { perror(what); exit(2); }

static void load_requests(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *data = malloc(size + 1);
    if (!data || fread(data, 1, size, f) != (size_t)size) die("read requests");
    fclose(f);
    long capacity = 1024;
    requests = malloc(capacity * sizeof *requests);
    for (char *p = data; p < data + size;) {
        char *end;
        long length = strtol(p, &end, 10);
        if (*end != '\n' || length <= 0 || end + 1 + length > data + size) {
            fprintf(stderr, "openloop: malformed requests file at byte %ld\n", (long)(p - data));
            exit(2);
        }
        if (n_requests == capacity) requests = realloc(requests, (capacity *= 2) * sizeof *requests);
        requests[n_requests].data = end + 1;
        requests[n_requests].length = length;
        n_requests++;
        p = end + 1 + length;
    }
    if (n_requests == 0) { fprintf(stderr, "openloop: no requests\n"); exit(2); }
}

static void close_conn(struct conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = UNUSED;
    open_conns--;
}

static void want_write(struct conn *c, int on) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send (more of) the current request; on a failure the request counts as a socket error. */
static void send_some(struct conn *c) {
    const char *data = requests[c->request % n_requests].data;
    size_t length = requests[c->request % n_requests].length;
    while (c->written < length) {
        ssize_t n = send(c->fd, data + c->written, length - c->written, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { want_write(c, 1); return; }
        if (n <= 0) { socket_errors++; close_conn(c); return; }
        c->written += n;
    }
    want_write(c, 0);
}

static void start(struct conn *c, long request) {
    c->request = request;
    c->written = c->received = 0;
    if (c->state == CONNECTING) return; /* sent once connected */
    c->state = BUSY;
    send_some(c);
}

static struct conn *open_conn(void) {
    struct conn *c = NULL;
    for (int i = 0; i < max_conns; i++)
        if (conns[i].state == UNUSED) { c = &conns[i]; break; }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->state = CONNECTING;
    open_conns++;
    if (open_conns > peak_conns) peak_conns = open_conns;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS) {
        socket_errors++;
        close_conn(c);
        return NULL;
    }
    return c;
}

/* A whole reply in c->buffer? Then note it; returns 1 when the connection may be reused. */
static int take_reply(struct conn *c, double t) {
    c->buffer[c->received] = 0;
    char *head_end = strstr(c->buffer, "\r\n\r\n");
    if (!head_end) return -1;
    *head_end = 0;
    char *cl = strcasestr(c->buffer, "\ncontent-length:");
    long body = cl ? strtol(cl + 16, NULL, 10) : 0;
    int closing = strcasestr(c->buffer, "\nconnection: close") != NULL;
    if ((size_t)(head_end + 4 - c->buffer) + body > c->received) { *head_end = '\r'; return -1; }
    int status = 0;
    sscanf(c->buffer, "HTTP/%*s %d", &status);
    double ms = (t - due(c->request)) * 1000;
    latencies[answered++] = ms;
    if (ms > IM_BUDGET_MS) over_budget++;
    if (status < 200 || status > 299) non_2xx++;
    return !closing;
}

static void on_event(struct conn *c, uint32_t events, double t) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { socket_errors++; close_conn(c); return; }
        c->state = BUSY;
        send_some(c);
        return;
    }
    if (c->state == BUSY && (events & EPOLLOUT) && c->written < requests[c->request % n_requests].length) {
        send_some(c);
        if (c->state != BUSY) return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    if (c->state == IDLE) { close_conn(c); return; } /* the server closed a kept-alive connection */
    ssize_t n = recv(c->fd, c->buffer + c->received, READ_BUFFER - c->received, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { socket_errors++; close_conn(c); return; }
    c->received += n;
    int reuse = take_reply(c, t);
    if (reuse < 0) {
        if (c->received == READ_BUFFER) { socket_errors++; close_conn(c); }
        return;
    }
    if (reuse) {
        c->state = IDLE;
        if (!c->in_idle_stack) { c->in_idle_stack = 1; idle_stack[n_idle++] = (int)(c - conns); }
    }
    else close_conn(c);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double pct) {
    if (!answered) return 0;
    long rank = (long)(pct / 100 * answered + 0.5);
    if (rank < 1) rank = 1;
    if (rank > answered) rank = answered;
    return latencies[rank - 1];
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s REQUESTS_FILE HOST PORT RATE SECONDS MAX_CONNECTIONS TIMEOUT_S\n", argv[0]);
        return 2;
    }
    load_requests(argv[1]);
    address.sin_family = AF_INET;
    address.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &address.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    rate = atof(argv[4]);
    double seconds = atof(argv[5]);
    max_conns = atoi(argv[6]);
    timeout_s = atof(argv[7]);
    long total = (long)(rate * seconds);
    if (rate <= 0 || max_conns <= 0 || total <= 0) { fprintf(stderr, "bad rate, seconds or connections\n"); return 2; }
    conns = calloc(max_conns, sizeof *conns);
    idle_stack = malloc(max_conns * sizeof *idle_stack);
    latencies = malloc(total * sizeof *latencies);
    if (!conns || !idle_stack || !latencies) die("malloc");
    epfd = epoll_create1(0);
    struct epoll_event events[256];

    t0 = now() + 0.01;
    long scheduled = 0;  /* requests due so far */
    long next = 0;       /* the oldest due request not yet sent: [next, scheduled) wait for a connection */
    double last_sweep = 0;
    for (;;) {
        double t = now();
        for (; scheduled < total && due(scheduled) <= t; scheduled++) {
            double lag = t - due(scheduled);
            lag_sum += lag;
            if (lag > lag_max) lag_max = lag;
            lag_over_1ms += lag > 0.001;
            lag_over_10ms += lag > 0.010;
        }
        for (; next < scheduled && due(next) + timeout_s <= t; next++) { timeouts++; over_budget++; }
        while (next < scheduled) {
            struct conn *c = NULL;
            while (n_idle && !c) {
                c = &conns[idle_stack[--n_idle]];
                c->in_idle_stack = 0;
                if (c->state != IDLE) c = NULL; /* closed while idle */
            }
            if (!c && open_conns < max_conns) {
                c = open_conn();
                if (!c) { next++; continue; } /* connect failed at once: a socket error for this one */
            }
            if (!c) break;
            start(c, next++);
        }
        if (t - last_sweep >= 0.01) { /* replies overdue past the time-out: give up, free the slot */
            last_sweep = t;
            for (int i = 0; i < max_conns; i++) {
                struct conn *c = &conns[i];
                if ((c->state == BUSY || c->state == CONNECTING) && due(c->request) + timeout_s <= t) {
                    timeouts++;
                    over_budget++;
                    close_conn(c);
                }
            }
        }
        int in_flight = 0;
        for (int i = 0; i < max_conns && !in_flight && scheduled == total && next == total; i++)
            in_flight = conns[i].state == BUSY || conns[i].state == CONNECTING;
        if (scheduled == total && next == total && !in_flight) break;
        double wait = scheduled < total ? due(scheduled) - now() : 0.01;
        int wait_ms = wait <= 0 ? 0 : (int)(wait * 1000) + 1; /* never early: a batch per millisecond */
        if (wait_ms > 10) wait_ms = 10;
        int n = epoll_wait(epfd, events, 256, wait_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        double t_event = now();
        for (int i = 0; i < n; i++) on_event(events[i].data.ptr, events[i].events, t_event);
    }
    double end = now();
    qsort(latencies, answered, sizeof *latencies, by_value);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
                 usage.ru_stime.tv_usec / 1e6;
    printf("OPENLOOP {\"scheduled\": %ld, \"answered\": %ld, \"non_2xx\": %ld, \"socket_errors\": %ld, "
           "\"timeouts\": %ld, \"over_2s\": %ld, \"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, "
           "\"seconds\": %.3f, \"send_seconds\": %.3f, \"lag_max_ms\": %.3f, \"lag_mean_ms\": %.4f, "
           "\"lag_over_1ms\": %ld, \"lag_over_10ms\": %ld, \"peak_connections\": %d, \"cpu_seconds\": %.3f}\n",
           total, answered, non_2xx, socket_errors, timeouts, over_budget, percentile(50), percentile(99),
           percentile(99.9), answered ? latencies[answered - 1] : 0.0, end - t0, due(total - 1) - t0,
           lag_max * 1000, total ? lag_sum / total * 1000 : 0.0, lag_over_1ms, lag_over_10ms, peak_conns, cpu);
    return 0;
}
