// Skald local actor benchmark -- CAF 0.17 peer.
//
// Prints one line per figure on stdout, in the format the bench runner parses:
//   pingpong n=<round trips> time=<s>s rate=<r> round-trips/s
//   fanout n=<messages> time=<s>s rate=<r> msgs/s
//   spawn n=<actors> time=<s>s rate=<r> spawns/s bytes_per_actor=<b>
//
// Usage: caf_local [scale]   (scale multiplies every n; default 1)
//
// Build: g++ -O2 -std=c++17 caf_local.cpp -o caf_local -lcaf_core -lpthread
//
// The actor system uses CAF's defaults (work-stealing scheduler, one worker
// per hardware thread); actors are spawned from the system, as a CAF user
// would do.

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
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
using stop_atom = atom_constant<atom("stop")>;

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0)
{
	return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Resident set size of this process in bytes, from /proc/self/status.
long long vm_rss_bytes()
{
	FILE *f = std::fopen("/proc/self/status", "r");
	if (f == nullptr)
		return -1;
	char line[256];
	long long kb = -1;
	while (std::fgets(line, sizeof line, f) != nullptr) {
		if (std::strncmp(line, "VmRSS:", 6) == 0) {
			kb = std::strtoll(line + 6, nullptr, 10);
			break;
		}
	}
	std::fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

long scaled(long n, double scale)
{
	long r = static_cast<long>(static_cast<double>(n) * scale);
	return r < 1 ? 1 : r;
}

// ---------------------------------------------------------------- pingpong

behavior pong_actor(event_based_actor *self)
{
	return {
	        [=](ping_atom, int64_t i) { return std::make_tuple(pong_atom::value, i); },
	        [=](stop_atom) { self->quit(); },
	};
}

// On `go` from the driver, plays `n` round trips with `pong`, then tells the
// driver and stops itself and its partner.
behavior ping_actor(event_based_actor *self, actor pong, int64_t n)
{
	auto driver = std::make_shared<strong_actor_ptr>();
	return {
	        [=](go_atom) {
		        *driver = self->current_sender();
		        self->send(pong, ping_atom::value, int64_t{1});
	        },
	        [=](pong_atom, int64_t i) {
		        if (i < n) {
			        self->send(pong, ping_atom::value, i + 1);
		        } else {
			        self->send(actor_cast<actor>(*driver), done_atom::value, i);
			        self->send(pong, stop_atom::value);
			        self->quit();
		        }
	        },
	};
}

void bench_pingpong(actor_system &sys, long n)
{
	auto pong = sys.spawn(pong_actor);
	auto ping = sys.spawn(ping_actor, pong, static_cast<int64_t>(n));
	scoped_actor self{sys};
	auto t0 = clock_type::now();
	self->send(ping, go_atom::value);
	self->receive([](done_atom, int64_t) {});
	double t = seconds_since(t0);
	std::printf("pingpong n=%ld time=%.3fs rate=%.0f round-trips/s\n", n, t,
	            static_cast<double>(n) / t);
	std::fflush(stdout);
}

// ------------------------------------------------------------------ fanout

behavior fanout_worker(event_based_actor *self)
{
	return {
	        [](int64_t round) { return round; },
	        [=](stop_atom) { self->quit(); },
	};
}

struct coordinator_state {
	std::vector<actor> workers;
	strong_actor_ptr driver;
	int64_t round = 0;
	size_t pending = 0;
};

// On `go`, runs `rounds` rounds: one request to every worker, next round once
// every worker has replied. Tells the driver when done.
behavior fanout_coordinator(stateful_actor<coordinator_state> *self, size_t workers, int64_t rounds)
{
	for (size_t i = 0; i < workers; ++i)
		self->state.workers.push_back(self->spawn(fanout_worker));
	auto start_round = [=] {
		auto &st = self->state;
		st.pending = st.workers.size();
		for (auto &w : st.workers)
			self->send(w, st.round);
	};
	return {
	        [=](go_atom) {
		        self->state.driver = self->current_sender();
		        start_round();
	        },
	        [=](int64_t) {
		        auto &st = self->state;
		        if (--st.pending > 0)
			        return;
		        if (++st.round < rounds) {
			        start_round();
			        return;
		        }
		        self->send(actor_cast<actor>(st.driver), done_atom::value, st.round);
		        for (auto &w : st.workers)
			        self->send(w, stop_atom::value);
		        st.workers.clear();
		        self->quit();
	        },
	};
}

void bench_fanout(actor_system &sys, long total_msgs)
{
	const size_t workers = 1000;
	int64_t rounds = total_msgs / static_cast<long>(2 * workers);
	if (rounds < 1)
		rounds = 1;
	long n = static_cast<long>(rounds * 2 * static_cast<int64_t>(workers));
	auto coord = sys.spawn(fanout_coordinator, workers, rounds);
	scoped_actor self{sys};
	auto t0 = clock_type::now();
	self->send(coord, go_atom::value);
	self->receive([](done_atom, int64_t) {});
	double t = seconds_since(t0);
	std::printf("fanout n=%ld time=%.3fs rate=%.0f msgs/s\n", n, t, static_cast<double>(n) / t);
	std::fflush(stdout);
}

// ------------------------------------------------------------------- spawn

// Counts actors whose behavior has been set up, so that the RSS reading is
// taken only once every actor is really alive (CAF initializes an event-based
// actor on its first scheduling, not inside spawn()).
std::atomic<long> initialized{0};

behavior idle_actor(event_based_actor *self)
{
	initialized.fetch_add(1, std::memory_order_relaxed);
	return {
	        [=](stop_atom) { self->quit(); },
	};
}

void bench_spawn(actor_system &sys, long n)
{
	// All actors of the previous figures are gone before the baseline is taken.
	sys.await_all_actors_done();
	std::vector<actor> actors;
	actors.reserve(static_cast<size_t>(n));
	initialized.store(0);
	long long rss_before = vm_rss_bytes();
	auto t0 = clock_type::now();
	for (long i = 0; i < n; ++i)
		actors.push_back(sys.spawn(idle_actor));
	while (initialized.load(std::memory_order_acquire) < n)
		std::this_thread::yield();
	long long rss_alive = vm_rss_bytes();
	for (auto &a : actors)
		anon_send(a, stop_atom::value);
	actors.clear(); // handles would otherwise keep the terminated actors' memory
	sys.await_all_actors_done();
	double t = seconds_since(t0);
	// Bytes counted include the one handle per actor held in `actors` (8 B).
	long long per_actor = (rss_alive - rss_before) / n;
	std::printf("spawn n=%ld time=%.3fs rate=%.0f spawns/s bytes_per_actor=%lld\n", n, t,
	            static_cast<double>(n) / t, per_actor);
	std::fflush(stdout);
}

} // namespace

int main(int argc, char **argv)
{
	double scale = 1.0;
	if (argc > 1) {
		scale = std::strtod(argv[1], nullptr);
		if (!(scale > 0)) {
			std::fprintf(stderr, "usage: %s [scale > 0]\n", argv[0]);
			return 2;
		}
	}
	actor_system_config cfg;
	actor_system sys{cfg};
	bench_pingpong(sys, scaled(1000000, scale));
	bench_fanout(sys, scaled(10000000, scale));
	bench_spawn(sys, scaled(1000000, scale));
	return 0;
}
