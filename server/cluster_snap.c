/* cluster_snap.c - engine copies for followers that install a snapshot (docs/cluster.md).
 *
 * The serving node detaches the connection from the HTTP server, pins the
 * engine's map (eng_copy_begin), and on a libuv worker thread writes an
 * mdb_env_copy2() of the engine into a temporary directory of its data
 * directory, then streams that file to the socket in 64 KiB pieces:
 *
 *   "HTTP/1.1 200 OK" header block | "IMCOPY01" | u64 BE size | bytes | u32 BE CRC-32
 *
 * Memory stays bounded by the piece size on both sides (design.md 7); the
 * copy costs disk space on the serving node while it is sent.  The fetching
 * side (node_fetch_copy) uses blocking sockets with timeouts: it runs inside
 * raft's snapshot restore, which is synchronous in raft 0.15.
 */
#include "cluster_node.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define COPY_MAGIC   "IMCOPY01"
#define PIECE	     65536
#define IO_TIMEOUT_S 30

struct snap_job {
	uv_work_t work;
	struct eng *eng;
	int fd;
	char dir[1100];
	int rv;
	uint64_t bytes;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	IM_UNUSED(st);
	IM_UNUSED(flag);
	IM_UNUSED(ftw);
	return remove(path);
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = read(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Worker thread: copy, then stream the file. */
static void snap_work(uv_work_t *w)
{
	struct snap_job *j = w->data;
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
				   "Connection: close\r\n\r\n";
	char path[1200];
	unsigned char buf[PIECE];
	j->rv = eng_copy(j->eng, j->dir);
	if (j->rv != 0)
		return;
	snprintf(path, sizeof(path), "%s/data.mdb", j->dir);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) != 0) {
		j->rv = -errno;
		if (in >= 0)
			close(in);
		return;
	}
	unsigned char hdr[16];
	memcpy(hdr, COPY_MAGIC, 8);
	im_put_be64(hdr + 8, (uint64_t)st.st_size);
	j->rv = write_all(j->fd, head, sizeof(head) - 1);
	if (j->rv == 0)
		j->rv = write_all(j->fd, hdr, sizeof(hdr));
	uint32_t crc = 0;
	uint64_t left = (uint64_t)st.st_size;
	while (j->rv == 0 && left) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		j->rv = read_all(in, buf, n);
		if (j->rv == 0)
			j->rv = write_all(j->fd, buf, n);
		crc = im_crc32(crc, buf, n);
		left -= n;
		j->bytes += n;
	}
	close(in);
	if (j->rv == 0) {
		unsigned char t[4];
		im_put_be32(t, crc);
		j->rv = write_all(j->fd, t, 4);
	}
}

static void snap_after(uv_work_t *w, int status)
{
	IM_UNUSED(status);
	struct snap_job *j = w->data;
	eng_copy_end(j->eng);
	close(j->fd);
	nftw(j->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	if (j->rv != 0)
		IM_WARN("engine copy: %s", im_strerror(j->rv));
	else
		IM_INFO("engine copy: %llu bytes sent", (unsigned long long)j->bytes);
	im_free(j);
}

static void free_handle(uv_handle_t *h)
{
	im_free(h);
}

void node__snapshot_serve(struct srv *s, struct http_req *h)
{
	struct im_str ts = http_req_header(h, "X-Imlog-Time");
	char tsz[32];
	snprintf(tsz, sizeof(tsz), "%.*s", (int)IM_MIN(ts.n, 31u), ts.p);
	if (!node__auth_ok(s, h, "snapshot", tsz, strlen(tsz)))
		return;
	/*
	 * Only the leader serves copies: a pinned map makes an apply that needs
	 * to grow it fail, which raft 0.15 tolerates on a leader but turns into
	 * an unavailable node on a follower.
	 */
	if (!clu_is_leader(s->clu)) {
		http_respond(h, 503, "text/plain", NULL, "not the leader\n", 15);
		return;
	}
	long long t = atoll(tsz);
	if (llabs(t - (long long)time(NULL)) > NODE_AUTH_SKEW_S) {
		http_respond(h, 401, "text/plain", NULL, "stale\n", 6);
		return;
	}
	struct snap_job *j = im_calloc(1, sizeof(*j));
	if (j == NULL) {
		http_respond(h, 503, "text/plain", NULL, "out of memory\n", 14);
		return;
	}
	snprintf(j->dir, sizeof(j->dir), "%s/copy-XXXXXX", s->cfg->data_dir);
	if (mkdtemp(j->dir) == NULL) {
		im_free(j);
		http_respond(h, 503, "text/plain", NULL, "no temporary directory\n", 23);
		return;
	}
	char peer[64];
	snprintf(peer, sizeof(peer), "%s", h->peer); /* h is gone once detached */
	char *rest = NULL;
	size_t rest_len = 0;
	uv_tcp_t *tcp = http_detach(h, NULL, 0, &rest, &rest_len);
	if (tcp == NULL) {
		rmdir(j->dir);
		im_free(j);
		http_respond(h, 400, "text/plain", NULL, "upgrade expected\n", 17);
		return;
	}
	im_free(rest);
	/* The worker writes to a blocking duplicate of the socket; libuv lets go of its own. */
	uv_os_fd_t fd = -1;
	uv_fileno((uv_handle_t *)tcp, &fd);
	j->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	uv_close((uv_handle_t *)tcp, free_handle);
	if (j->fd < 0) {
		rmdir(j->dir);
		im_free(j);
		return;
	}
	fcntl(j->fd, F_SETFL, fcntl(j->fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	setsockopt(j->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	j->eng = s->eng;
	j->work.data = j;
	eng_copy_begin(j->eng);
	IM_INFO("engine copy for %s: starting", peer);
	if (uv_queue_work(s->loop, &j->work, snap_work, snap_after) != 0) {
		j->rv = -EAGAIN;
		snap_after(&j->work, 0);
	}
}

/* ---------------------------------------------------------------- fetching (blocking) */

static int dial(const char *addr, int timeout_s, char *err, size_t errlen)
{
	struct sockaddr_in sa;
	if (addr == NULL || im_ipv4_parse(addr, strlen(addr), &sa) != 0) {
		snprintf(err, errlen, "bad IPv4 HOST:PORT %s", addr ? addr : "(none)");
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = {.tv_sec = timeout_s};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int rv = -errno;
		snprintf(err, errlen, "connect %s: %s", addr, strerror(errno));
		close(fd);
		return rv;
	}
	return fd;
}

int node_fetch_copy(struct srv *s, const char *addr, const char *dir, char *err, size_t errlen)
{
	err[0] = '\0';
	int fd = dial(addr, IO_TIMEOUT_S, err, errlen);
	if (fd < 0)
		return fd;
	char ts[32], mac[65];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	node_auth(s->secret, "snapshot", ts, strlen(ts), mac);
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "POST /cluster/node/snapshot HTTP/1.1\r\nHost: imlog\r\n"
			 "Connection: Upgrade\r\nUpgrade: imlog-copy\r\nX-Imlog-Node: %lld\r\n"
			 "X-Imlog-Time: %s\r\nX-Imlog-Auth: %s\r\nContent-Length: 0\r\n\r\n",
			 (long long)s->cfg->node_id, ts, mac);
	int rv = write_all(fd, req, (size_t)n);
	/* The header block, byte by byte up to its blank line (it is short). */
	char head[2048];
	size_t hl = 0;
	while (rv == 0 && (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0)) {
		if (hl == sizeof(head) - 1) {
			rv = -EPROTO;
			break;
		}
		rv = read_all(fd, head + hl, 1);
		hl++;
	}
	head[hl] = '\0';
	if (rv == 0 && strncmp(head, "HTTP/1.1 200", 12) != 0) {
		snprintf(err, errlen, "%s answered: %.60s", addr, head);
		close(fd);
		return -EPROTO;
	}
	unsigned char hdr[16];
	if (rv == 0)
		rv = read_all(fd, hdr, sizeof(hdr));
	if (rv == 0 && memcmp(hdr, COPY_MAGIC, 8) != 0)
		rv = -EPROTO;
	char path[1200];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	int out = rv == 0 ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (rv == 0 && out < 0)
		rv = -errno;
	uint64_t left = rv == 0 ? im_get_be64(hdr + 8) : 0, size = left;
	uint32_t crc = 0;
	unsigned char *buf = im_malloc(PIECE);
	if (buf == NULL && rv == 0)
		rv = -ENOMEM;
	while (rv == 0 && left) {
		size_t k = left < PIECE ? (size_t)left : PIECE;
		rv = read_all(fd, buf, k);
		if (rv == 0)
			rv = write_all(out, buf, k);
		crc = im_crc32(crc, buf, k);
		left -= k;
	}
	im_free(buf);
	unsigned char t[4];
	if (rv == 0)
		rv = read_all(fd, t, 4);
	if (rv == 0 && im_get_be32(t) != crc)
		rv = IM_ECHECKSUM;
	if (rv == 0 && fsync(out) != 0)
		rv = -errno;
	if (out >= 0)
		close(out);
	close(fd);
	if (rv == 0) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		IM_INFO("engine copy: %llu bytes from %s", (unsigned long long)size, addr);
	} else if (err[0] == '\0') {
		snprintf(err, errlen, "copy from %s: %s", addr, im_strerror(rv));
	}
	return rv;
}

int node_http_post(const char *addr, const char *path, const char *headers, const char *body,
		   int timeout_s, int *status, struct im_buf *out, char *err, size_t errlen)
{
	err[0] = '\0';
	int fd = dial(addr, timeout_s, err, errlen);
	if (fd < 0)
		return fd;
	struct im_buf req = {0};
	int rv = im_buf_printf(&req,
			       "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
			       "Content-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n%s",
			       path, addr, headers ? headers : "", strlen(body), body);
	if (rv == 0)
		rv = write_all(fd, req.p, req.len);
	im_buf_free(&req);
	struct im_buf all = {0};
	char buf[4096];
	while (rv == 0) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rv = -errno;
		if (n <= 0)
			break;
		rv = im_buf_add(&all, buf, (size_t)n);
	}
	close(fd);
	const char *sep = rv == 0 && all.len ? memmem(all.p, all.len, "\r\n\r\n", 4) : NULL;
	if (rv == 0 && (sep == NULL || all.len < 12 || strncmp(all.p, "HTTP/1.1 ", 9) != 0))
		rv = -EPROTO;
	if (rv == 0) {
		*status = atoi(all.p + 9);
		rv = im_buf_add(out, sep + 4, all.len - (size_t)(sep + 4 - all.p));
		if (rv == 0)
			rv = im_buf_add(out, "", 1); /* NUL-terminated for the JSON parser */
		if (rv == 0)
			out->len--;
	}
	if (rv != 0 && err[0] == '\0')
		snprintf(err, errlen, "%s%s: %s", addr, path, im_strerror(rv));
	im_buf_free(&all);
	return rv;
}
