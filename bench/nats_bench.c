/* nats_bench.c - the NATS JetStream side of the side-by-side benchmarks: publishes with ack into
 * a file-storage stream (send -> ack, like loadgen's send-ack) and, with --push, receives them
 * through a push consumer (send -> delivery, like send-push), driven through libnats. */

/*
 * The same measurement rules as bench/loadgen: a warm-up, then `seconds` measured, then a drain;
 * open loop with --rate R (message k is due at t0 + k/R and its latency counts from that due
 * time, so a stall cannot hide) or closed loop with --rate 0 (--window publishes in flight,
 * latency from the publish).  Each payload starts with its due time (8 bytes, host order), so
 * the ack handler and the consumer need no table.  libnats calls the handlers on its own
 * threads: the counters and histograms are under one mutex.
 * Usage: nats_bench --url nats://HOST:PORT [--replicas R] [--seconds T] [--warmup W]
 *                   [--rate R] [--window W] [--size B] [--push]
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "lg_hist.h"

static struct {
	const char *url;
	int replicas, window, size;
	double seconds, warmup, rate;
	bool push;
} O = {"nats://127.0.0.1:4222", 1, 400, 200, 10, 1, 0, false};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hist ack_h, push_h;
static uint64_t m_start, m_end, acks, acks_in, pushes, pushes_in, errors;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die_status(const char *what, natsStatus s, jsErrCode je)
{
	fprintf(stderr, "nats_bench: %s: %s (jetstream error %d)\n", what, natsStatus_GetText(s),
		(int)je);
	exit(1);
}

static void record(natsMsg *msg, bool push)
{
	uint64_t now = now_ns(), due;
	if (natsMsg_GetDataLength(msg) < 8)
		return;
	memcpy(&due, natsMsg_GetData(msg), 8);
	pthread_mutex_lock(&mu);
	if (push) {
		pushes++;
		if (now >= m_start && now < m_end)
			pushes_in++;
		if (due >= m_start && due < m_end)
			h_record(&push_h, now - due);
	} else {
		acks++;
		if (now >= m_start && now < m_end)
			acks_in++;
		if (due >= m_start && due < m_end)
			h_record(&ack_h, now - due);
	}
	pthread_mutex_unlock(&mu);
}

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void)js, (void)pa, (void)closure;
	if (pae != NULL) {
		pthread_mutex_lock(&mu);
		errors++;
		pthread_mutex_unlock(&mu);
	} else {
		record(msg, false);
	}
	natsMsg_Destroy(msg);
}

static void on_push(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	(void)nc, (void)sub, (void)closure;
	record(msg, true);
	natsMsg_Destroy(msg); /* the library acks after the handler returns (auto-ack) */
}

static void print_latency(const char *name, const struct hist *h)
{
	static const struct {
		const char *n;
		double q;
	} qs[] = {{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}};
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		printf("%s_latency_%s_ms %.3f\n", name, qs[i].n,
		       (double)h_quantile(h, qs[i].q) / 1e6);
	printf("%s_latency_max_ms %.3f\n", name, (double)h->max / 1e6);
	printf("%s_latency_samples %" PRIu64 "\n", name, h->n);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"url", 1, 0, 'u'},	   {"replicas", 1, 0, 'R'}, {"seconds", 1, 0, 't'},
	    {"warmup", 1, 0, 'W'}, {"rate", 1, 0, 'r'},	    {"window", 1, 0, 'n'},
	    {"size", 1, 0, 'z'},   {"push", 0, 0, 'p'},	    {0, 0, 0, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'u':
			O.url = optarg;
			break;
		case 'R':
			O.replicas = atoi(optarg);
			break;
		case 't':
			O.seconds = atof(optarg);
			break;
		case 'W':
			O.warmup = atof(optarg);
			break;
		case 'r':
			O.rate = atof(optarg);
			break;
		case 'n':
			O.window = atoi(optarg);
			break;
		case 'z':
			O.size = atoi(optarg);
			break;
		case 'p':
			O.push = true;
			break;
		default:
			fputs(
			    "usage: nats_bench --url URL [--replicas R] [--seconds T] [--warmup W] "
			    "[--rate R] [--window W] [--size B] [--push]\n",
			    stderr);
			exit(2);
		}
	}
	if (O.size < 8 || O.window < 1 || O.seconds <= 0 || O.rate < 0)
		exit(2);
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	jsErrCode je = 0;
	natsStatus s = natsConnection_ConnectTo(&nc, O.url);
	if (s != NATS_OK)
		die_status("connect", s, 0);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = O.window;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.StallWait = 60000;
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
		die_status("jetstream", s, 0);

	/* A fresh file-storage stream with R replicas. */
	const char *subjects[] = {"bench.>"};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = "BENCH";
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = O.replicas;
	js_DeleteStream(js, "BENCH", NULL, NULL);
	jsStreamInfo *si = NULL;
	if ((s = js_AddStream(&si, js, &sc, NULL, &je)) != NATS_OK)
		die_status("add stream", s, je);
	jsStreamInfo_Destroy(si);

	natsSubscription *sub = NULL;
	if (O.push) {
		jsSubOptions so;
		jsSubOptions_Init(&so);
		so.Stream = "BENCH";
		so.Config.DeliverPolicy = js_DeliverNew;
		if ((s = js_Subscribe(&sub, js, "bench.>", on_push, NULL, NULL, &so, &je)) !=
		    NATS_OK)
			die_status("subscribe", s, je);
		natsSubscription_SetPendingLimits(sub, -1, -1);
	}

	char *payload = calloc(1, (size_t)O.size);
	memset(payload + 8, 'm', (size_t)O.size - 8);
	uint64_t t0 = now_ns(), sent = 0;
	m_start = t0 + (uint64_t)(O.warmup * 1e9);
	m_end = m_start + (uint64_t)(O.seconds * 1e9);
	for (;;) {
		uint64_t due;
		if (O.rate > 0) {
			due = t0 + (uint64_t)((double)sent * 1e9 / O.rate);
			if (due >= m_end)
				break;
			uint64_t now = now_ns();
			if (due > now) {
				struct timespec ts = {0, (long)(due - now)};
				nanosleep(&ts, NULL);
			}
		} else {
			due = now_ns();
			if (due >= m_end)
				break;
		}
		memcpy(payload, &due, 8);
		s = js_PublishAsync(js, "bench.msg", payload, O.size, NULL);
		if (s != NATS_OK)
			die_status("publish", s, 0);
		sent++;
	}
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = 30000;
	js_PublishAsyncComplete(js, &po);
	/* Drain the consumer for at most 3 s. */
	for (int i = 0; O.push && i < 300; i++) {
		pthread_mutex_lock(&mu);
		bool all = pushes >= sent;
		pthread_mutex_unlock(&mu);
		if (all)
			break;
		nats_Sleep(10);
	}
	pthread_mutex_lock(&mu);
	printf("nats_bench url=%s replicas=%d storage=file rate=%.0f window=%d size=%d "
	       "seconds=%.1f warmup=%.1f push=%d\n",
	       O.url, O.replicas, O.rate, O.window, O.size, O.seconds, O.warmup, O.push);
	printf("sent %" PRIu64 "\nacked %" PRIu64 "\nerrors %" PRIu64 "\n", sent, acks, errors);
	printf("ack_throughput_per_s %.0f\n", (double)acks_in / O.seconds);
	print_latency("ack", &ack_h);
	if (O.push) {
		printf("pushes %" PRIu64 "\npush_throughput_per_s %.0f\n", pushes,
		       (double)pushes_in / O.seconds);
		print_latency("push", &push_h);
	}
	pthread_mutex_unlock(&mu);
	if (sub != NULL) {
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
	}
	js_DeleteStream(js, "BENCH", NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(payload);
	nats_Close();
	return 0;
}
