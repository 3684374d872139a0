/* lg_cli.c - the load generator's options, its REST setup (users, groups, tokens) and its
 * report: the parts that run before and after the event loop (see loadgen.h). */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

const char *const lg_sc_names[] = {"send-ack", "send-push", "group", "idle", "reconnect"};

/* Splits "HOST:PORT". */
static void parse_addr(const char *s, char *host, size_t hn, int *port)
{
	const char *c = strrchr(s, ':');
	if (c == NULL || (size_t)(c - s) >= hn || (*port = atoi(c + 1)) <= 0)
		lg_die("bad address %s (want HOST:PORT)", s);
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
}

/* ------------------------------------------------------------------ output */

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

static void print_srv(const char *when, const struct srvstat *s)
{
	if (s->ok)
		printf("server_%s_rss_kib %ld\nserver_%s_rss_anon_kib %ld\nserver_%s_hwm_kib %ld\n"
		       "kernel_%s_tcp_mem_pages %ld\n",
		       when, s->rss_kib, when, s->anon_kib, when, s->hwm_kib, when,
		       s->tcp_mem_pages);
}

void lg_report(void)
{
	const struct opts *o = &G.o;
	printf("loadgen scenario=%s conns=%d rate=%.0f window=%d size=%d seconds=%.1f warmup=%.1f "
	       "seed=%" PRIu64 " sources=%d histogram=log-linear(<=0.79%%)\n",
	       lg_sc_names[o->sc], G.n, o->rate, o->window, o->size, o->seconds, o->warmup, o->seed,
	       o->sources);
	printf("token_fetch_s %.2f\n", G.token_s);
	printf("connect_all_s %.2f\n", lg_secs(G.t_conn0, G.t_conn1));
	print_srv("setup", &G.s_setup);
	print_srv("open", &G.s_open);
	print_srv("end", &G.s_end);
	double run_s = lg_secs(G.t0, G.t_end);
	if (G.s_open.ok && G.s_end.ok && run_s > 0 && o->sc != SC_RECONNECT)
		printf("server_cpu_percent %.1f (of one core, from all connected to the end)\n",
		       100.0 * (G.s_end.cpu_s - G.s_open.cpu_s) / run_s);
	printf("generator_cpu_percent %.1f (of one core, from all connected to the end)\n",
	       100.0 * (G.cpu1 - G.cpu0) / run_s);
	if (o->sc == SC_IDLE) {
		printf("idle_seconds %.1f\nping_interval_s %.1f\npings %" PRIu64 "\npongs %" PRIu64
		       "\n",
		       run_s, o->ping, G.s.pings, G.s.pongs);
		if (G.s_setup.ok && G.s_open.ok)
			printf("server_kib_per_connection %.2f (RSS) %.2f (anonymous RSS)\n",
			       (double)(G.s_open.rss_kib - G.s_setup.rss_kib) / G.n,
			       (double)(G.s_open.anon_kib - G.s_setup.anon_kib) / G.n);
		return;
	}
	printf("sent %" PRIu64 "\n", G.s.sent);
	printf("acked %" PRIu64 "\n", G.s.acked);
	printf("errors %" PRIu64 "\n", G.s.errors);
	printf("unanswered %" PRIu64 "\n", G.s.sent - LG_MIN(G.s.replies, G.s.sent));
	if (G.s.first_error[0])
		printf("first_error %s\n", G.s.first_error);
	if (G.s.bad || G.s.foreign)
		printf("unexpected_frames %" PRIu64 "\n", G.s.bad + G.s.foreign);
	if (o->sc == SC_RECONNECT) {
		printf("offline_send_s %.2f\noffline_send_per_s %.0f\n",
		       lg_secs(G.t_send0, G.t_send1),
		       (double)G.s.acked / lg_secs(G.t_send0, G.t_send1));
		printf("clients_caught_up %" PRIu64 "\nclients_short %" PRIu64
		       "\nmessages_pulled %" PRIu64 "\npull_requests %" PRIu64 "\n",
		       G.s.caught, G.s.short_clients, G.s.pulled, G.s.pull_reqs);
		if (G.t_caught)
			printf("storm_all_caught_up_s %.3f\n", lg_secs(G.t_storm, G.t_caught));
		print_srv("storm", &G.s_storm);
		if (G.s_storm.ok && G.s_end.ok && G.t_storm)
			printf(
			    "server_storm_cpu_percent %.1f (of one core, storm to all caught up)\n",
			    100.0 * (G.s_end.cpu_s - G.s_storm.cpu_s) /
				lg_secs(G.t_storm, G.t_end));
		print_latency("catchup", &G.s.catchup);
		print_latency("since_storm", &G.s.storm);
		return;
	}
	if (G.serial) {
		print_latency("ack", &G.s.ack);
		printf("deliveries %" PRIu64 "\nsender_copies %" PRIu64 "\ncomplete %" PRIu64 "\n",
		       G.s.pushes, G.s.self_pushes, G.s.complete);
		print_latency("delivery", &G.s.push);
		print_latency("last_delivery", &G.s.last);
		return;
	}
	printf("ack_throughput_per_s %.0f\n", (double)G.s.acked_in_window / o->seconds);
	print_latency("ack", &G.s.ack);
	if (o->sc == SC_GROUP) {
		printf("deliveries %" PRIu64 "\nsender_copies %" PRIu64 "\ncomplete %" PRIu64 "\n",
		       G.s.pushes, G.s.self_pushes, G.s.complete);
		printf("delivery_throughput_per_s %.0f\n",
		       (double)G.s.pushes_in_window / o->seconds);
		printf("complete_per_s %.0f\n", (double)G.s.complete_in_window / o->seconds);
		print_latency("delivery", &G.s.push);
		print_latency("last_delivery", &G.s.last);
	} else if (o->sc == SC_SEND_PUSH) {
		printf("pushes %" PRIu64 "\n", G.s.pushes);
		printf("sender_copies %" PRIu64 "\n", G.s.self_pushes);
		printf("push_throughput_per_s %.0f\n", (double)G.s.pushes_in_window / o->seconds);
		print_latency("push", &G.s.push);
	} else {
		printf("push_frames %" PRIu64 "\n", G.s.pushes);
	}
}

/* ------------------------------------------------------------------- setup */

/*
 * Groups over REST (openim-protocol.md §3.4): create_group by the admin with member 0 as the
 * owner and the next --batch - 1 members, then invite_user_to_group in batches of --batch.
 * The groups are built before anyone connects, so no 1501/1509 tips are pushed.
 */
static void build_groups(struct lg_rest *r, const char *admin)
{
	char gid[ID_MAX], id[ID_MAX], err[256];
	int code, calls = 0;
	uint64_t t = uv_hrtime();
	for (int g = 0; g < G.o.groups; g++) {
		int base = g * G.o.members, first = LG_MIN(G.o.batch, G.o.members);
		struct lg_buf b = {0};
		lg_group_id(g, gid, sizeof(gid));
		lg_member_name(base, id, sizeof(id), NULL);
		lg_buf_printf(&b, "{\"ownerUserID\":\"%s\",\"adminUserIDs\":[],\"memberUserIDs\":[",
			      id);
		for (int j = 1; j < first; j++) {
			lg_member_name(base + j, id, sizeof(id), NULL);
			lg_buf_printf(&b, "%s\"%s\"", j > 1 ? "," : "", id);
		}
		lg_buf_printf(&b,
			      "],\"groupInfo\":{\"groupID\":\"%s\",\"groupName\":\"%s\","
			      "\"notification\":\"\",\"introduction\":\"\",\"faceURL\":\"\","
			      "\"ex\":\"\",\"groupType\":2,\"needVerification\":0,"
			      "\"lookMemberInfo\":0,\"applyMemberFriend\":0}}",
			      gid, gid);
		json_t *d =
		    lg_rest_post(r, "/group/create_group", admin, b.p, &code, err, sizeof(err));
		if (d == NULL)
			lg_die("create_group %s: %d %s", gid, code, err);
		json_decref(d);
		calls++;
		for (int j = first; j < G.o.members; j += G.o.batch) {
			b.len = 0;
			lg_buf_printf(
			    &b, "{\"groupID\":\"%s\",\"reason\":\"\",\"invitedUserIDs\":[", gid);
			for (int i = j; i < G.o.members && i < j + G.o.batch; i++) {
				lg_member_name(base + i, id, sizeof(id), NULL);
				lg_buf_printf(&b, "%s\"%s\"", i > j ? "," : "", id);
			}
			lg_buf_printf(&b, "]}");
			d = lg_rest_post(r, "/group/invite_user_to_group", admin, b.p, &code, err,
					 sizeof(err));
			if (d == NULL)
				lg_die("invite_user_to_group %s: %d %s", gid, code, err);
			json_decref(d);
			calls++;
		}
		free(b.p);
	}
	G.build_s = lg_secs(t, uv_hrtime());
	printf("groups %d\nmembers_per_group %d\nonline_per_group %d\ngroup_build_calls %d\n"
	       "group_build_s %.3f\n",
	       G.o.groups, G.o.members, G.o.online, calls, G.build_s);
	fflush(stdout);
}

void lg_setup(void)
{
	if (G.o.no_setup) {
		for (int i = 0; i < G.n; i++)
			G.c[i].token = strdup("x");
		return;
	}
	struct lg_rest r = {.fd = -1};
	lg_rest_open(&r, G.o.api_host, G.o.api_port);
	char *admin = lg_admin_token(&r, G.o.secret);
	uint64_t t0 = uv_hrtime();
	int users = G.o.sc == SC_GROUP ? G.o.groups * G.o.members : G.n;
	lg_register(&r, admin, users, REG_BATCH, G.o.sc == SC_GROUP ? lg_member_name : lg_conn_name,
		    NULL);
	printf("users_registered %d\nregister_s %.3f\n", users, lg_secs(t0, uv_hrtime()));
	fflush(stdout);
	if (G.o.sc == SC_GROUP) {
		fprintf(stderr, "loadgen: %d users registered; building groups\n", users);
		build_groups(&r, admin);
	}
	lg_rest_close(&r);
	uint64_t t = uv_hrtime();
	char **tokens = calloc((size_t)G.n, sizeof(*tokens));
	if (tokens == NULL)
		lg_die("out of memory");
	lg_tokens(G.o.api_host, G.o.api_port, admin, G.n, lg_conn_name, NULL, tokens, 16, 16);
	G.token_s = lg_secs(t, uv_hrtime());
	for (int i = 0; i < G.n; i++)
		G.c[i].token = tokens[i];
	free(tokens);
	free(admin);
}

static void usage(void)
{
	fputs(
	    "usage: loadgen --scenario S --api HOST:PORT --ws HOST:PORT --secret S [options]\n"
	    "scenarios:\n"
	    "  send-ack   1:1 sends in pairs, latency to the 1003 reply\n"
	    "  send-push  1:1 sends in pairs, latency to the receiver's 2001 push\n"
	    "  group      --groups G of --members M, --online K of each connected; sends to the\n"
	    "             groups at --rate R (open loop) or, with --rate 0, --count messages one\n"
	    "             at a time; deliveries/s and send -> last online delivery\n"
	    "  idle       --conns N authenticated connections sending a text ping every --ping s\n"
	    "             for --seconds; server memory per connection and CPU (needs --pid)\n"
	    "  reconnect  --conns N clients go offline, --senders S send --per-client messages\n"
	    "             to each, all reconnect at once and catch up with 1001 + 1002\n"
	    "options: [--conns N] [--seconds T] [--warmup W] [--rate R] [--window W] [--size B]\n"
	    "         [--seed N] [--sources K] [--prefix P] [--handshakes H] [--pid SERVER_PID]\n"
	    "         [--groups G] [--members M] [--online K] [--batch B] [--count C] [--ping S]\n"
	    "         [--per-client P] [--senders S] [--no-setup]\n"
	    "  --rate R      messages/s offered in total (open loop); 0 = closed loop (window)\n"
	    "  --window W    outstanding requests per connection with --rate 0 (default 4)\n"
	    "  --sources K   bind connections to 127.0.0.1..K (default: one per 20,000)\n"
	    "  --no-setup    no REST calls, dummy tokens (for bench/echo)\n",
	    stderr);
	exit(2);
}

void lg_parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {{"scenario", 1, 0, 'S'}, {"api", 1, 0, 'a'},
					   {"ws", 1, 0, 'w'},	    {"secret", 1, 0, 's'},
					   {"conns", 1, 0, 'c'},    {"seconds", 1, 0, 't'},
					   {"warmup", 1, 0, 'W'},   {"rate", 1, 0, 'r'},
					   {"window", 1, 0, 'n'},   {"size", 1, 0, 'z'},
					   {"seed", 1, 0, 'e'},	    {"sources", 1, 0, 'x'},
					   {"prefix", 1, 0, 'p'},   {"handshakes", 1, 0, 'H'},
					   {"pid", 1, 0, 'P'},	    {"groups", 1, 0, 'g'},
					   {"members", 1, 0, 'm'},  {"online", 1, 0, 'o'},
					   {"batch", 1, 0, 'b'},    {"count", 1, 0, 'C'},
					   {"ping", 1, 0, 'i'},	    {"per-client", 1, 0, 'q'},
					   {"senders", 1, 0, 'd'},  {"no-setup", 0, 0, 'N'},
					   {"help", 0, 0, 'h'},	    {0, 0, 0, 0}};
	const char *api = NULL, *ws = NULL, *sc = "send-ack";
	*o = (struct opts){.conns = 100,
			   .window = 4,
			   .size = 64,
			   .seconds = 10,
			   .warmup = 1,
			   .seed = 1,
			   .prefix = "lg",
			   .handshakes = 256,
			   .groups = 1,
			   .members = 100,
			   .online = 100,
			   .batch = 200,
			   .count = 20,
			   .ping = 25,
			   .per_client = 100,
			   .senders = 20};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'S':
			sc = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'w':
			ws = optarg;
			break;
		case 's':
			o->secret = optarg;
			break;
		case 'c':
			o->conns = atoi(optarg);
			break;
		case 't':
			o->seconds = atof(optarg);
			break;
		case 'W':
			o->warmup = atof(optarg);
			break;
		case 'r':
			o->rate = atof(optarg);
			break;
		case 'n':
			o->window = atoi(optarg);
			break;
		case 'z':
			o->size = atoi(optarg);
			break;
		case 'e':
			o->seed = strtoull(optarg, NULL, 10);
			break;
		case 'x':
			o->sources = atoi(optarg);
			break;
		case 'p':
			o->prefix = optarg;
			break;
		case 'H':
			o->handshakes = atoi(optarg);
			break;
		case 'P':
			o->pid = atoi(optarg);
			break;
		case 'g':
			o->groups = atoi(optarg);
			break;
		case 'm':
			o->members = atoi(optarg);
			break;
		case 'o':
			o->online = atoi(optarg);
			break;
		case 'b':
			o->batch = atoi(optarg);
			break;
		case 'C':
			o->count = atoi(optarg);
			break;
		case 'i':
			o->ping = atof(optarg);
			break;
		case 'q':
			o->per_client = atoi(optarg);
			break;
		case 'd':
			o->senders = atoi(optarg);
			break;
		case 'N':
			o->no_setup = true;
			break;
		default:
			usage();
		}
	}
	if (api == NULL || ws == NULL || (o->secret == NULL && !o->no_setup) || optind != argc)
		usage();
	o->sc = SC_SEND_ACK;
	while (o->sc <= SC_RECONNECT && strcmp(sc, lg_sc_names[o->sc]) != 0)
		o->sc++;
	if (o->sc > SC_RECONNECT)
		lg_die("unknown --scenario %s", sc);
	parse_addr(api, o->api_host, sizeof(o->api_host), &o->api_port);
	parse_addr(ws, o->ws_host, sizeof(o->ws_host), &o->ws_port);
	if ((o->sc == SC_SEND_ACK || o->sc == SC_SEND_PUSH) && (o->conns < 2 || o->conns % 2 != 0))
		lg_die("--conns must be even and >= 2 (connections send to each other in pairs)");
	if (o->sc == SC_GROUP && (o->groups < 1 || o->members < 2 || o->online < 2 ||
				  o->online > o->members || o->batch < 2 || o->count < 1))
		lg_die("--groups >= 1, 2 <= --online <= --members, --batch >= 2, --count >= 1");
	if (o->sc == SC_RECONNECT && (o->conns < 1 || o->senders < 1 || o->per_client < 1))
		lg_die("--conns, --senders and --per-client must be >= 1");
	if (o->size < 0 || o->size > TEXT_POOL)
		lg_die("--size must be 0..%d", TEXT_POOL);
	if (o->seconds <= 0 || o->warmup < 0 || o->rate < 0 || o->window < 1 || o->handshakes < 1 ||
	    o->ping <= 0)
		lg_die("bad --seconds, --warmup, --rate, --window, --handshakes or --ping");
	if (o->sources <= 0)
		o->sources = (o->conns + PER_SOURCE - 1) / PER_SOURCE;
	if (o->sources > 254)
		lg_die("--sources must be <= 254");
}
