%% Skald remote ping-pong benchmark -- Erlang/OTP peer (distributed Erlang).
%%
%% Two named nodes on loopback sharing a cookie.  The server node registers a
%% process `pong` that answers {ping, From, Id} with {pong, Id}; the client
%% node sends {ping, self(), Id} to it and prints one line per phase:
%%   latency    window=1 n=R time=<s>s <rate> round-trips/s rtt_us <stats>
%%   throughput window=W n=N time=<s>s <rate> round-trips/s rtt_us <stats>
%% with <stats> = "mean=.. p50=.. p90=.. p99=.. max=.." in microseconds.
%% The latency phase has one request in flight; the throughput phase keeps W
%% in flight, every reply letting the next request go, until N replies are in.
%% A request's round-trip time runs from its send to the receipt of its reply.
%% Percentiles are nearest-rank.
%%
%% Run (bench/peers/erl_remote_pingpong.sh does all of this):
%%   erl -noinput -name S@127.0.0.1 -setcookie C -pa build/bench \
%%       -run remote_pingpong server
%%   erl -noinput -name K@127.0.0.1 -setcookie C -pa build/bench \
%%       -run remote_pingpong client S@127.0.0.1 R N W
%% The server halts when the client sends `quit` or when the client's node
%% goes down; the client halts after printing.
-module(remote_pingpong).
-export([server/0, server/1, client/1]).

%% How long the client keeps trying to reach the server's `pong` process.
-define(CONNECT_RETRY_MS, 30000).

%% ------------------------------------------------------------------ server

server() -> server([]).

server(_Args) ->
    Pong = spawn(fun pong_start/0),
    true = register(pong, Pong),
    Ref = erlang:monitor(process, Pong),
    receive {'DOWN', Ref, process, Pong, _} -> ok end,
    erlang:halt(0).

%% The first ping tells pong which node the client is on; it watches that
%% node, so that it also stops if the client goes away without `quit`.
pong_start() ->
    receive
        {ping, From, Id} ->
            erlang:monitor_node(node(From), true),
            From ! {pong, Id},
            pong_loop();
        {quit, From} ->
            From ! bye
    end.

pong_loop() ->
    receive
        {ping, From, Id} ->
            From ! {pong, Id},
            pong_loop();
        {quit, From} ->
            From ! bye;
        {nodedown, _Node} ->
            ok
    end.

%% ------------------------------------------------------------------ client

client([ServerNode, R, N, W]) ->
    client(list_to_atom(ServerNode), to_pos_int(R), to_pos_int(N), to_pos_int(W));
client(_) ->
    io:format(standard_error,
              "usage: remote_pingpong client ServerNode R N W~n", []),
    erlang:halt(2).

client(ServerNode, R, N, W) ->
    Pong = find_pong(ServerNode, now_ms() + ?CONNECT_RETRY_MS),
    erlang:monitor(process, Pong),
    Lat = phase(Pong, R, 1),
    Thr = phase(Pong, N, W),
    report("latency", 1, R, Lat),
    report("throughput", W, N, Thr),
    Pong ! {quit, self()},
    receive bye -> ok after 5000 -> ok end,
    erlang:halt(0).

to_pos_int(S) ->
    case string:to_integer(S) of
        {I, []} when I > 0 -> I;
        _ ->
            io:format(standard_error, "remote_pingpong: bad count ~s~n", [S]),
            erlang:halt(2)
    end.

%% Connects to the server node and looks its `pong` process up, retrying
%% while the server node starts.
find_pong(ServerNode, Deadline) ->
    Found = case net_kernel:connect_node(ServerNode) of
                true -> rpc:call(ServerNode, erlang, whereis, [pong]);
                _ -> undefined
            end,
    case Found of
        Pid when is_pid(Pid) ->
            Pid;
        _ ->
            case now_ms() < Deadline of
                true ->
                    timer:sleep(50),
                    find_pong(ServerNode, Deadline);
                false ->
                    io:format(standard_error,
                              "remote_pingpong: no pong process on ~s~n",
                              [ServerNode]),
                    erlang:halt(1)
            end
    end.

now_ms() -> erlang:monotonic_time(millisecond).

now_ns() -> erlang:monotonic_time(nanosecond).

%% Plays N round trips with at most W in flight.  Request ids are 1..N; the
%% send time of each request in flight is kept in a map by id.  Returns
%% {Seconds, RttsInNs}.
phase(Pong, N, W) ->
    T0 = now_ns(),
    Pending = send_pings(Pong, 1, min(W, N), #{}),
    {TEnd, Rtts} = await(Pong, N, min(W, N) + 1, 0, Pending, []),
    {(TEnd - T0) / 1.0e9, Rtts}.

send_pings(_Pong, Id, Last, Pending) when Id > Last ->
    Pending;
send_pings(Pong, Id, Last, Pending) ->
    Pending1 = Pending#{Id => now_ns()},
    Pong ! {ping, self(), Id},
    send_pings(Pong, Id + 1, Last, Pending1).

%% Next is the id of the next request to send; Received counts replies.
await(Pong, N, Next, Received, Pending, Rtts) ->
    receive
        {pong, Id} ->
            T = now_ns(),
            {Sent, Pending1} = maps:take(Id, Pending),
            Rtts1 = [T - Sent | Rtts],
            case Received + 1 of
                N ->
                    {T, Rtts1};
                Received1 when Next =< N ->
                    Pending2 = send_pings(Pong, Next, Next, Pending1),
                    await(Pong, N, Next + 1, Received1, Pending2, Rtts1);
                Received1 ->
                    await(Pong, N, Next, Received1, Pending1, Rtts1)
            end;
        {'DOWN', _, process, Pong, Reason} ->
            io:format(standard_error, "remote_pingpong: pong went down: ~p~n",
                      [Reason]),
            erlang:halt(1)
    end.

report(Label, W, N, {Seconds, RttsNs}) ->
    Sorted = list_to_tuple(lists:sort(RttsNs)),
    Us = fun(Ns) -> Ns / 1000 end,
    Mean = Us(lists:sum(RttsNs) / N),
    Pct = fun(P) -> Us(element(rank(P, N), Sorted)) end,
    io:format("~-10s window=~b n=~b time=~.3fs ~b round-trips/s rtt_us"
              " mean=~.1f p50=~.1f p90=~.1f p99=~.1f max=~.1f~n",
              [Label, W, N, Seconds, round(N / Seconds), Mean,
               Pct(50), Pct(90), Pct(99), Us(element(N, Sorted))]).

%% Nearest-rank index (1-based) of percentile P among N sorted values.
rank(P, N) -> min(N, max(1, ceil(P * N / 100))).
