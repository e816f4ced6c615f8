// The tic-tac-toe page: join, get matched, play, watch the game live.
// It talks to the node that served it (the HTTP API of docs/TICTACTOE.md);
// that node reaches the game wherever the cluster keeps it. With
// ?autoplay=1 (and &name=NAME) the page plays a whole game against the bot
// by itself, clicking the first free cell on its turn: the browser test
// uses it.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const autoplay = params.get("autoplay") === "1";

let me = null;        // {id, name}
let game = null;      // {id, you, opponent}
let last = null;      // the last state shown
let owner = "";       // the node that owns the game, as last seen
let seeking = null;   // the AbortController of a matchmaking stream
let watching = null;  // ... of the game's stream
let moving = false;

function log(text) {
  const li = document.createElement("li");
  li.textContent = text;
  $("log").appendChild(li);
  li.scrollIntoView({block: "nearest"});
}

async function api(method, path, body, headers) {
  const init = {method, headers: Object.assign({}, headers)};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return {status: res.status, data, headers: res.headers};
}

// Reads a JSON-lines answer, calling onLine for each line; resolves at its end.
async function readLines(res, onLine) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += decoder.decode(value, {stream: true});
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() !== "") onLine(JSON.parse(line));
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- joining and matchmaking -----------------------------------------------

async function join(name) {
  const r = await api("POST", "/players", {name});
  if (r.status !== 201) {
    $("join-error").textContent = (r.data && r.data.error) || "cannot join (" + r.status + ")";
    return;
  }
  me = {id: r.data.player_id, name};
  $("me").textContent = name + " (" + me.id + ")";
  $("join").hidden = true;
  $("seek").hidden = false;
  log("joined as " + name);
  if (autoplay) seek(true);
}

async function seek(bot) {
  if (seeking) seeking.abort();
  const ctl = new AbortController();
  seeking = ctl;
  $("lobby-status").textContent = bot ? "asking for the bot..." : "waiting for an opponent...";
  try {
    const res = await fetch("/matchmaking", {
      method: "POST", signal: ctl.signal,
      headers: {"player_id": me.id, "Content-Type": "application/json"},
      body: JSON.stringify({bot}),
    });
    if (res.status !== 200) {
      const data = await res.json().catch(() => ({}));
      $("lobby-status").textContent = data.error || "matchmaking failed (" + res.status + ")";
      return;
    }
    await readLines(res, (line) => {
      if (line.type === "waiting") {
        $("lobby-status").textContent = "waiting: " + line.waiting + " waiting, " +
          line.playing + " games in progress";
      } else if (line.type === "matched") {
        startGame({id: line.game_id, you: line.you, opponent: line.opponent});
      } else if (line.type === "error") {
        $("lobby-status").textContent = line.error;
      }
    });
  } catch (e) {
    if (e.name !== "AbortError") $("lobby-status").textContent = "matchmaking broke off: " + e.message;
  } finally {
    if (seeking === ctl) seeking = null;
  }
}

// ---- playing ---------------------------------------------------------------

function startGame(g) {
  game = g;
  last = null;
  owner = "";
  $("seek").hidden = true;
  $("game").hidden = false;
  $("again").hidden = true;
  $("game").dataset.game = g.id;
  $("game-title").textContent = "Game " + g.id + ": you are " + g.you + " against " + g.opponent;
  log("matched: game " + g.id + ", you are " + g.you + " against " + g.opponent);
  watchGame(g.id);
}

// The game's stream: the state now, then one line per move. When it breaks
// (the node that owned the game went), it is opened again: the game goes on
// elsewhere.
async function watchGame(id) {
  while (game && game.id === id) {
    const ctl = new AbortController();
    watching = ctl;
    try {
      const res = await fetch("/games/" + encodeURIComponent(id) + "/stream", {signal: ctl.signal});
      if (res.status === 200) {
        await readLines(res, render);
      } else if (res.status !== 503) {
        const data = await res.json().catch(() => ({}));
        log("the game stream failed: " + (data.error || res.status));
        return;
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      log("the game stream broke off (" + e.message + "); opening it again");
    }
    if (last && last.result !== null) return;
    await sleep(500);
  }
}

function render(s) {
  if (!game || s.game_id !== game.id) return;
  if (last && s.moves < last.moves) return;
  if (last && s.moves > last.moves) {
    for (let i = 0; i < 9; i++)
      if (s.board[i] !== last.board[i])
        log(s.board[i] + " played row " + Math.floor(i / 3) + ", column " + (i % 3));
  }
  last = s;
  const el = $("game");
  el.dataset.board = s.board;
  el.dataset.moves = String(s.moves);
  el.dataset.result = s.result === null ? "" : s.result;
  el.dataset.next = s.next === null ? "" : s.next;
  document.querySelectorAll("#board button").forEach((b) => {
    const c = s.board[Number(b.dataset.cell)];
    b.textContent = c === "." ? "" : c;
    b.className = c === "." ? "" : c;
    b.disabled = c !== "." || s.result !== null || s.next !== me.id;
  });
  if (s.result !== null) {
    const mine = s.result === game.you.toLowerCase();
    $("turn").textContent = s.result === "draw" ? "Draw." : mine ? "You won!" : "You lost.";
    log("game over: " + (s.result === "draw" ? "draw" : s.result.toUpperCase() + " won"));
    $("again").hidden = false;
    if (watching) watching.abort();
  } else {
    $("turn").textContent = s.next === me.id ? "Your turn." : "Waiting for " + game.opponent + "...";
  }
  refreshOwner();
  if (autoplay && s.result === null && s.next === me.id) {
    const free = document.querySelector("#board button:not(:disabled)");
    if (free) setTimeout(() => free.click(), 0);
  }
}

async function move(cell) {
  if (!game || moving) return;
  moving = true;
  const id = game.id;
  try {
    for (;;) {
      const r = await api("POST", "/games/" + encodeURIComponent(id) + "/moves",
        {player_id: me.id, row: Math.floor(cell / 3), col: cell % 3});
      if (r.status === 200) { render(r.data); return; }
      if (r.status === 503) {
        // The game is moving to another node: wait, then look at it again
        // (the move may have landed before the answer was lost).
        const wait = Number(r.headers.get("Retry-After") || "1");
        log("the game is moving to another node; retrying in " + wait + " s");
        await sleep(wait * 1000);
        const g = await api("GET", "/games/" + encodeURIComponent(id));
        if (g.status === 200) {
          render(g.data);
          if (g.data.board[cell] !== "." || g.data.next !== me.id) return;
        }
        continue;
      }
      log("move refused: " + ((r.data && r.data.error) || r.status));
      return;
    }
  } catch (e) {
    log("move failed: " + e.message);
  } finally {
    moving = false;
  }
}

// ---- the cluster -----------------------------------------------------------

async function refreshOwner() {
  if (!game) return;
  try {
    const r = await fetch("/games/" + encodeURIComponent(game.id), {method: "HEAD"});
    const now = r.headers.get("Skald-Owner") || "";
    if (now && owner && now !== owner) log("the game moved from node " + owner + " to node " + now);
    if (now) owner = now;
    $("owner").textContent = owner ? "This game lives on node " + owner + "." : "";
  } catch (e) { /* the next refresh tries again */ }
}

async function refreshCluster() {
  try {
    const r = await api("GET", "/cluster");
    if (r.status !== 200) return;
    $("served-by").textContent = "served by node " + r.data.self;
    const ul = $("members");
    ul.textContent = "";
    for (const m of r.data.members) {
      const li = document.createElement("li");
      li.className = m.status + (m.name === owner ? " owner" : "");
      li.textContent = m.name + " " + m.address + " ";
      const st = document.createElement("span");
      st.className = "status";
      st.textContent = m.status + (m.lobby ? ", lobby" : "") + (m.name === owner ? ", your game" : "");
      li.appendChild(st);
      ul.appendChild(li);
    }
  } catch (e) { /* the next refresh tries again */ }
}

// ---- wiring ----------------------------------------------------------------

$("join-form").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("name").value.trim());
});
$("find").addEventListener("click", () => seek(false));
$("bot").addEventListener("click", () => seek(true));
$("again").addEventListener("click", () => {
  game = null;
  $("game").hidden = true;
  $("seek").hidden = false;
});
document.querySelectorAll("#board button").forEach((b) =>
  b.addEventListener("click", () => move(Number(b.dataset.cell))));

refreshCluster();
setInterval(refreshCluster, 2000);
setInterval(refreshOwner, 2000);
if (autoplay) {
  join(params.get("name") || "chromium");
  pulse();
}

// Under a test, headless Chromium runs the page on virtual time, which
// stands still only while a request waits for its answer, not while a
// stream waits for its next line. Asking the node something every 50 ms
// ties the page's clock to the cluster's, so the game gets the real time it
// needs before the test's time budget is spent.
async function pulse() {
  while (!(last && last.result !== null)) {
    try { await fetch("/cluster"); } catch (e) { /* the next pulse tries again */ }
    await sleep(50);
  }
}
