%% Skald local actor benchmark -- Erlang/OTP peer.
%%
%% Prints one line per figure on stdout, in the format the bench runner parses:
%%   pingpong n=<round trips> time=<s>s rate=<r> round-trips/s
%%   fanout n=<messages> time=<s>s rate=<r> msgs/s
%%   spawn n=<actors> time=<s>s rate=<r> spawns/s bytes_per_actor=<b>
%%
%% Run (scale is optional and multiplies every n; default 1):
%%   erl -noshell +S 2 +P 4194304 -pa build/bench -run local main [Scale]
%% main/1 halts the VM when done.  +P raises the process limit (default
%% 262144) so that one million processes can be alive at once.
%%
%% Memory: bytes_per_actor is the growth of the OS process's VmRSS, read from
%% /proc/self/status with file:read_file/1 (the same measure as the other
%% peers), not erlang:memory(total).
-module(local).
-export([main/0, main/1]).

main() -> main([]).

main(Args) ->
    Scale = parse_scale(Args),
    check_process_limit(scaled(1000000, Scale)),
    pingpong(scaled(1000000, Scale)),
    fanout(scaled(10000000, Scale)),
    spawn_bench(scaled(1000000, Scale)),
    erlang:halt(0).

parse_scale([]) -> 1.0;
parse_scale([S | _]) when is_atom(S) -> parse_scale([atom_to_list(S)]);
parse_scale([S | _]) ->
    case string:to_float(S) of
        {F, []} when F > 0 -> F;
        _ ->
            case string:to_integer(S) of
                {I, []} when I > 0 -> float(I);
                _ ->
                    io:format(standard_error, "usage: local [scale > 0]~n", []),
                    erlang:halt(2)
            end
    end.

%% The spawn figure needs N processes alive at once; fail early, not after the
%% other figures, when erl was started without a large enough +P.
check_process_limit(N) ->
    Limit = erlang:system_info(process_limit),
    case Limit >= N + erlang:system_info(process_count) + 100 of
        true -> ok;
        false ->
            io:format(standard_error,
                      "local: process limit ~b is too low for ~b processes;"
                      " start erl with +P ~b~n", [Limit, N, 4 * N]),
            erlang:halt(3)
    end.

scaled(N, Scale) -> max(1, trunc(N * Scale)).

now_us() -> erlang:monotonic_time(microsecond).

seconds(T0) -> (now_us() - T0) / 1.0e6.

%% ---------------------------------------------------------------- pingpong

pingpong(N) ->
    Self = self(),
    Pong = spawn(fun pong_loop/0),
    Ping = spawn(fun() -> receive go -> ping_loop(Pong, Self, 1, N) end end),
    T0 = now_us(),
    Ping ! go,
    receive pingpong_done -> ok end,
    T = seconds(T0),
    io:format("pingpong n=~b time=~.3fs rate=~b round-trips/s~n",
              [N, T, round(N / T)]).

ping_loop(Pong, Parent, I, N) ->
    Pong ! {ping, self(), I},
    receive
        {pong, I} when I >= N ->
            Pong ! stop,
            Parent ! pingpong_done;
        {pong, I} ->
            ping_loop(Pong, Parent, I + 1, N)
    end.

pong_loop() ->
    receive
        {ping, From, I} ->
            From ! {pong, I},
            pong_loop();
        stop ->
            ok
    end.

%% ------------------------------------------------------------------ fanout

-define(WORKERS, 1000).

fanout(TotalMsgs) ->
    Rounds = max(1, TotalMsgs div (2 * ?WORKERS)),
    N = Rounds * 2 * ?WORKERS,
    Self = self(),
    Coord = spawn(fun() -> coordinator(Self, Rounds) end),
    T0 = now_us(),
    Coord ! go,
    receive fanout_done -> ok end,
    T = seconds(T0),
    io:format("fanout n=~b time=~.3fs rate=~b msgs/s~n",
              [N, T, round(N / T)]).

%% The coordinator spawns its workers, then, on `go`, runs Rounds rounds: one
%% request to every worker, next round once every worker has replied.
coordinator(Parent, Rounds) ->
    Workers = [spawn(fun worker_loop/0) || _ <- lists:seq(1, ?WORKERS)],
    receive go -> ok end,
    rounds(Workers, 0, Rounds),
    [W ! stop || W <- Workers],
    Parent ! fanout_done.

rounds(_Workers, R, R) ->
    ok;
rounds(Workers, R, Rounds) ->
    Self = self(),
    [W ! {req, Self, R} || W <- Workers],
    await_replies(?WORKERS),
    rounds(Workers, R + 1, Rounds).

await_replies(0) -> ok;
await_replies(K) ->
    receive {rep, _R} -> await_replies(K - 1) end.

worker_loop() ->
    receive
        {req, From, R} ->
            From ! {rep, R},
            worker_loop();
        stop ->
            ok
    end.

%% ------------------------------------------------------------------- spawn

spawn_bench(N) ->
    garbage_collect(),
    RssBefore = vm_rss_bytes(),
    T0 = now_us(),
    Pids = spawn_idle(N, []),
    RssAlive = vm_rss_bytes(),
    %% Stop every process and wait until all are gone ('DOWN' arrives once the
    %% process has exited).  The monitor is set when stopping, so its memory
    %% is not counted in the alive figure.
    lists:foreach(fun(P) -> erlang:monitor(process, P), P ! stop end, Pids),
    await_down(N),
    T = seconds(T0),
    %% The bytes counted include the list of pids held here (2 words per pid).
    PerActor = (RssAlive - RssBefore) div N,
    io:format("spawn n=~b time=~.3fs rate=~b spawns/s bytes_per_actor=~b~n",
              [N, T, round(N / T), PerActor]).

spawn_idle(0, Acc) -> Acc;
spawn_idle(K, Acc) -> spawn_idle(K - 1, [spawn(fun idle/0) | Acc]).

idle() ->
    receive stop -> ok end.

await_down(0) -> ok;
await_down(K) ->
    receive {'DOWN', _, process, _, _} -> await_down(K - 1) end.

vm_rss_bytes() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    [_, Rest] = binary:split(Bin, <<"VmRSS:">>),
    [Line | _] = binary:split(Rest, <<"\n">>),
    [Kb | _] = string:lexemes(string:trim(binary_to_list(Line)), " \t"),
    list_to_integer(Kb) * 1024.
