// Skald remote ping-pong benchmark -- CAF 0.17 peer.
//
// Usage:
//   caf_remote_pingpong -m server [-H host] [-p port]
//   caf_remote_pingpong -m client [-H host] [-p port] [-r R] [-n N] [-w W]
//
// The server publishes a pong actor on host:port with the middleman (BASP over
// TCP); it exits when the client asks it to quit or when the client's node
// goes away.  The client looks the pong actor up with remote_actor() and runs
// two phases, printing one line for each:
//   latency    window=1 n=R time=<s>s <rate> round-trips/s rtt_us <stats>
//   throughput window=W n=N time=<s>s <rate> round-trips/s rtt_us <stats>
// with <stats> = "mean=.. p50=.. p90=.. p99=.. max=.." in microseconds.
// The latency phase has one request in flight; the throughput phase keeps W
// in flight, every reply letting the next request go, until N replies are in.
// A request's round-trip time runs from its send to the handling of its reply.
// Percentiles are nearest-rank.
//
// Build:
//   g++ -O2 -std=c++17 caf_remote_pingpong.cpp -o caf_remote_pingpong -lcaf_io -lcaf_core -lpthread
//
// Both ends use CAF's default configuration (work-stealing scheduler, one
// worker per hardware thread, the middleman's own multiplexer thread).  The
// ping side is an event-based actor that sends (ping, id) messages; the pong
// actor answers by returning (pong, id), which CAF sends back to the sender.

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace caf;

namespace
{

using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using go_atom = atom_constant<atom("go")>;
using done_atom = atom_constant<atom("done")>;
using fail_atom = atom_constant<atom("fail")>;
using quit_atom = atom_constant<atom("quit")>;
using bye_atom = atom_constant<atom("bye")>;

using clock_type = std::chrono::steady_clock;

// How long the client keeps retrying remote_actor() while the server starts.
constexpr auto connect_retry = std::chrono::seconds(10);

// ------------------------------------------------------------------ server

struct pong_state {
	bool watching = false;
};

// Answers (ping, id) with (pong, id).  It monitors the first sender, so that
// it also stops when the client's node disconnects without saying goodbye.
behavior pong_actor(stateful_actor<pong_state> *self)
{
	self->set_down_handler([=](down_msg &) { self->quit(); });
	return {
	        [=](ping_atom, int64_t id) {
		        if (!self->state.watching) {
			        self->state.watching = true;
			        self->monitor(self->current_sender());
		        }
		        return std::make_tuple(pong_atom::value, id);
	        },
	        [=](quit_atom) {
		        self->quit();
		        return bye_atom::value;
	        },
	};
}

int run_server(actor_system &sys, const std::string &host, uint16_t port)
{
	auto pong = sys.spawn(pong_actor);
	auto bound = sys.middleman().publish(pong, port, host.c_str(), true);
	if (!bound) {
		std::fprintf(stderr, "caf_remote_pingpong: cannot publish on %s:%u: %s\n",
		             host.c_str(), port, sys.render(bound.error()).c_str());
		anon_send_exit(pong, exit_reason::user_shutdown);
		return 1;
	}
	std::fprintf(stderr, "caf_remote_pingpong: pong published on %s:%u\n", host.c_str(),
	             *bound);
	scoped_actor self{sys};
	self->monitor(pong);
	self->receive([](const down_msg &) {});
	return 0;
}

// ------------------------------------------------------------------ client

struct phase_data {
	int64_t n = 0;
	int64_t window = 0;
	double seconds = 0;
	std::vector<clock_type::time_point> sent_at; // by request id
	std::vector<double> rtt_us;                  // by request id
};

struct results {
	phase_data latency;
	phase_data throughput;
};

struct ping_state {
	phase_data *phase = nullptr;
	int64_t sent = 0;
	int64_t received = 0;
	clock_type::time_point t0;
	strong_actor_ptr driver;
};

// On `go` from the driver, runs the latency phase, then the throughput phase,
// then asks pong to quit and tells the driver `done` (or `fail` if pong goes
// away).  Results are written into *res, which the driver reads after `done`.
behavior ping_actor(stateful_actor<ping_state> *self, actor pong, std::shared_ptr<results> res)
{
	auto send_next = [=] {
		auto &st = self->state;
		int64_t id = st.sent++;
		st.phase->sent_at[static_cast<size_t>(id)] = clock_type::now();
		self->send(pong, ping_atom::value, id);
	};
	auto start = [=](phase_data &ph) {
		auto &st = self->state;
		st.phase = &ph;
		st.sent = 0;
		st.received = 0;
		ph.sent_at.resize(static_cast<size_t>(ph.n));
		ph.rtt_us.resize(static_cast<size_t>(ph.n));
		st.t0 = clock_type::now();
		for (int64_t i = 0; i < std::min(ph.window, ph.n); ++i)
			send_next();
	};
	auto tell_driver = [=](auto what) {
		self->send(actor_cast<actor>(self->state.driver), what);
		self->quit();
	};
	self->monitor(pong);
	self->set_down_handler([=](down_msg &) { tell_driver(fail_atom::value); });
	return {
	        [=](go_atom) {
		        self->state.driver = self->current_sender();
		        start(res->latency);
	        },
	        [=](pong_atom, int64_t id) {
		        auto now = clock_type::now();
		        auto &st = self->state;
		        auto &ph = *st.phase;
		        if (id < 0 || id >= st.sent)
			        return;
		        auto i = static_cast<size_t>(id);
		        ph.rtt_us[i] =
		                std::chrono::duration<double, std::micro>(now - ph.sent_at[i])
		                        .count();
		        if (st.sent < ph.n)
			        send_next();
		        if (++st.received < ph.n)
			        return;
		        ph.seconds = std::chrono::duration<double>(now - st.t0).count();
		        if (st.phase == &res->latency) {
			        start(res->throughput);
			        return;
		        }
		        self->demonitor(pong);
		        self->request(pong, std::chrono::seconds(5), quit_atom::value)
		                .then([=](bye_atom) { tell_driver(done_atom::value); },
		                      [=](error &) { tell_driver(done_atom::value); });
	        },
	};
}

// Nearest-rank percentile of the sorted vector v.
double percentile(const std::vector<double> &v, double p)
{
	auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
	rank = std::min(std::max(rank, size_t{1}), v.size());
	return v[rank - 1];
}

void report(const char *label, phase_data &ph)
{
	auto &v = ph.rtt_us;
	std::sort(v.begin(), v.end());
	double sum = 0;
	for (double x : v)
		sum += x;
	auto n = static_cast<double>(ph.n);
	std::printf("%-10s window=%lld n=%lld time=%.3fs %.0f round-trips/s rtt_us mean=%.1f "
	            "p50=%.1f p90=%.1f p99=%.1f max=%.1f\n",
	            label, static_cast<long long>(ph.window), static_cast<long long>(ph.n),
	            ph.seconds, n / ph.seconds, sum / n, percentile(v, 50), percentile(v, 90),
	            percentile(v, 99), v.back());
	std::fflush(stdout);
}

int run_client(actor_system &sys, const std::string &host, uint16_t port, int64_t r, int64_t n,
               int64_t w)
{
	auto deadline = clock_type::now() + connect_retry;
	auto pong = sys.middleman().remote_actor(host, port);
	while (!pong && clock_type::now() < deadline) {
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
		pong = sys.middleman().remote_actor(host, port);
	}
	if (!pong) {
		std::fprintf(stderr, "caf_remote_pingpong: cannot connect to %s:%u: %s\n",
		             host.c_str(), port, sys.render(pong.error()).c_str());
		return 1;
	}
	auto res = std::make_shared<results>();
	res->latency.n = r;
	res->latency.window = 1;
	res->throughput.n = n;
	res->throughput.window = w;
	auto ping = sys.spawn(ping_actor, *pong, res);
	scoped_actor self{sys};
	self->send(ping, go_atom::value);
	bool ok = false;
	self->receive([&](done_atom) { ok = true; }, [&](fail_atom) { ok = false; });
	if (!ok) {
		std::fprintf(stderr, "caf_remote_pingpong: lost the connection to the server\n");
		return 1;
	}
	report("latency", res->latency);
	report("throughput", res->throughput);
	return 0;
}

[[noreturn]] void usage(const char *prog)
{
	std::fprintf(stderr,
	             "usage: %s -m server|client [-H host] [-p port] [-r R] [-n N] [-w W]\n"
	             "  defaults: -H 127.0.0.1 -p 47000 -r 10000 -n 200000 -w 1000\n",
	             prog);
	std::exit(2);
}

long positive(const char *prog, const char *s)
{
	char *end = nullptr;
	long v = std::strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < 1)
		usage(prog);
	return v;
}

} // namespace

int main(int argc, char **argv)
{
	std::string mode;
	std::string host = "127.0.0.1";
	long port = 47000, r = 10000, n = 200000, w = 1000;
	int c;
	while ((c = getopt(argc, argv, "m:H:p:r:n:w:h")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = positive(argv[0], optarg);
			break;
		case 'r':
			r = positive(argv[0], optarg);
			break;
		case 'n':
			n = positive(argv[0], optarg);
			break;
		case 'w':
			w = positive(argv[0], optarg);
			break;
		default:
			usage(argv[0]);
		}
	}
	if ((mode != "server" && mode != "client") || optind != argc || port > 65535)
		usage(argv[0]);

	actor_system_config cfg;
	cfg.load<io::middleman>();
	actor_system sys{cfg};
	auto p = static_cast<uint16_t>(port);
	if (mode == "server")
		return run_server(sys, host, p);
	return run_client(sys, host, p, r, n, w);
}
