#include "autoconfig.h"

#include "proto/sockaddr.h"
#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef HAVE_LINUX_UDP_H
#include <linux/udp.h>
#endif

#include "log.h"
#include "util.h"

#define TAG "udp"
/* Ask for large buffers: a burst of QUIC packets at 1 Gbit/s outruns the
 * default 208 KiB.  Unprivileged processes get at most rmem_max/wmem_max;
 * we log what the kernel granted. */
#define UDP_BUF_WANT (8 * 1024 * 1024)

static void udp_set_buf(int fd, int opt, int force_opt, const char *name) {
  int want = UDP_BUF_WANT, got = 0;
  socklen_t gl = sizeof got;
  /* SO_*BUFFORCE works for root (CAP_NET_ADMIN) beyond the sysctl cap. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &want, sizeof want) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &want, sizeof want);
  getsockopt(fd, SOL_SOCKET, opt, &got, &gl);
  sfk_info(TAG, "%s buffer: asked %d KiB, kernel granted %d KiB", name,
           want / 1024, got / 1024);
}

/* The segment size of a GRO message (its UDP_GRO cmsg), or len. */
static size_t udp_gro_segment(struct msghdr *mh, size_t len) {
#ifdef UDP_GRO
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
    if (cm->cmsg_level == IPPROTO_UDP && cm->cmsg_type == UDP_GRO &&
        cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int seg;
      memcpy(&seg, CMSG_DATA(cm), sizeof seg);
      if (seg > 0 && (size_t)seg < len)
        return (size_t)seg;
    }
  }
#else
  (void)mh;
#endif
  return len;
}

static void udp_read_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct sfk_udp *u = w->data;
  (void)loop;
  (void)revents;
  struct mmsghdr msgs[SFK_UDP_BATCH];
  struct iovec iov[SFK_UDP_BATCH];
  struct sockaddr_storage from[SFK_UDP_BATCH];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[SFK_UDP_BATCH];
  const int nslots = u->gro ? SFK_UDP_GRO_BATCH : SFK_UDP_BATCH;
  const size_t slot = SFK_UDP_SLOT;

  /* Drain a bounded number of batches per wakeup so one busy socket
   * cannot starve the TCP side. */
  for (int round = 0; round < 8; round++) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < nslots; i++) {
      iov[i].iov_base = u->rbuf + (size_t)i * slot;
      iov[i].iov_len = slot;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      if (u->gro) {
        msgs[i].msg_hdr.msg_control = ctl[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
      }
    }
    int n = recvmmsg(u->fd, msgs, (unsigned)nslots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        sfk_debug(TAG, "recvmmsg: %s", strerror(errno));
      return;
    }
    for (int i = 0; i < n; i++) {
      struct msghdr *mh = &msgs[i].msg_hdr;
      const uint8_t *p = iov[i].iov_base;
      size_t len = msgs[i].msg_len, seg;
      if (mh->msg_flags & MSG_TRUNC) {
        u->rx_truncated++;
        continue;
      }
      seg = u->gro ? udp_gro_segment(mh, len) : len;
      /* A dual-stack socket names IPv4 senders ::ffff:a.b.c.d; everyone
       * above sees them as the IPv4 addresses they published (sending to
       * an IPv4 address works on such a socket). */
      socklen_t fromlen = mh->msg_namelen;
      sa_unmap_v4(&from[i], &fromlen);
      for (size_t off = 0; off < len; off += seg) {
        u->rx_dgrams++;
        u->on_recv(u->arg, (struct sockaddr *)&from[i], fromlen,
                   p + off, len - off < seg ? len - off : seg);
      }
    }
    if (n < nslots)
      return;
  }
}

int sfk_udp_open(struct sfk_udp *u, struct ev_loop *loop,
                 const struct sockaddr *addr, socklen_t addrlen,
                 sfk_udp_recv_fn on_recv, void *arg) {
  char as[SFK_ADDRSTR_MAX];
  memset(u, 0, sizeof *u);
  u->fd = -1;
  u->rbuf = malloc(SFK_UDP_RBUF);
  if (!u->rbuf)
    return -ENOMEM;
  u->fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (u->fd < 0) {
    int e = errno;
    sfk_err(TAG, "socket: %s", strerror(e));
    return -e;
  }
  if (bind(u->fd, addr, addrlen) < 0) {
    int e = errno;
    sfk_err(TAG, "cannot bind UDP %s: %s", sfk_addr_str(addr, as, sizeof as),
            strerror(e));
    return -e;
  }
  u->locallen = sizeof u->local;
  getsockname(u->fd, (struct sockaddr *)&u->local, &u->locallen);
  udp_set_buf(u->fd, SO_RCVBUF, SO_RCVBUFFORCE, "UDP receive");
  udp_set_buf(u->fd, SO_SNDBUF, SO_SNDBUFFORCE, "UDP send");
#ifdef UDP_SEGMENT
  u->gso = 1;
#endif
#ifdef UDP_GRO
  /* SFKIT_PROXY_NO_GRO: for a kernel or driver whose GRO misbehaves, and
   * to test the path without it. */
  if (!getenv("SFKIT_PROXY_NO_GRO")) {
    int one = 1;
    u->gro = setsockopt(u->fd, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
  }
#endif
  if (!u->gro)
    sfk_info(TAG, "UDP GRO off: one datagram per read slot");
  u->on_recv = on_recv;
  u->arg = arg;
  ev_io_init(&u->rio, udp_read_cb, u->fd, EV_READ);
  u->rio.data = u;
  ev_io_start(loop, &u->rio);
  return 0;
}

void sfk_udp_close(struct sfk_udp *u, struct ev_loop *loop) {
  if (u->fd >= 0) {
    ev_io_stop(loop, &u->rio);
    close(u->fd);
    u->fd = -1;
  }
  free(u->rbuf);
  u->rbuf = NULL;
}

static int udp_send_one(struct sfk_udp *u, const struct sockaddr *to,
                        socklen_t tolen, const uint8_t *buf, size_t len,
                        size_t gso_size) {
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  struct msghdr mh = {.msg_name = (void *)to,
                      .msg_namelen = tolen,
                      .msg_iov = &iov,
                      .msg_iovlen = 1};
#ifdef UDP_SEGMENT
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  if (gso_size && len > gso_size) {
    memset(&ctl, 0, sizeof ctl);
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = IPPROTO_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = (uint16_t)gso_size;
    memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  }
#else
  (void)gso_size;
#endif
  ssize_t n;
  do
    n = sendmsg(u->fd, &mh, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : 0;
}

int sfk_udp_send(struct sfk_udp *u, const struct sockaddr *to,
                 socklen_t tolen, const uint8_t *buf, size_t len,
                 size_t gso_size) {
  if (u->fd < 0)
    return -EBADF;
  size_t count = gso_size ? (len + gso_size - 1) / gso_size : 1;
  if (gso_size && len > gso_size && u->gso) {
    int rc = udp_send_one(u, to, tolen, buf, len, gso_size);
    if (rc == 0) {
      u->tx_dgrams += count;
      return 0;
    }
    if (rc != -EIO && rc != -EINVAL && rc != -ENOPROTOOPT &&
        rc != -EOPNOTSUPP) {
      u->tx_errors++;
      return rc;
    }
    /* The kernel or device refused segmentation: fall back for good. */
    sfk_info(TAG, "UDP GSO unavailable (%s); sending datagrams one by one",
             strerror(-rc));
    u->gso = 0;
  }
  if (!gso_size || len <= gso_size)
    gso_size = len;
  for (size_t off = 0; off < len; off += gso_size) {
    size_t n = len - off < gso_size ? len - off : gso_size;
    int rc = udp_send_one(u, to, tolen, buf + off, n, 0);
    if (rc < 0) {
      u->tx_errors++;
      return rc;
    }
    u->tx_dgrams++;
  }
  return 0;
}
