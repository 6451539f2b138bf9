// A WebSocket client of Quorum's live rooms that reconnects after a drop. Each event the
// server sends carries a sequence number `seq`. On reconnect the client sends the last one it
// saw as `?since=`, so the server replays what was missed. When the gap is older than the
// server's history, the server sends `resync` (in `hello`, or as an event of its own), and the
// page must reload its data from the REST API.

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** Builds the WebSocket URL of a same-origin API path, so the session cookie authenticates the upgrade. */
function socketUrl(path, since) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (since !== null) {
    url.searchParams.set('since', String(since));
  }
  return url.toString();
}

export class LiveSocket {
  /**
   * @param {string} path the API path of the room, such as `/api/v1/projects/demo/events`
   * @param {object} handlers `onEvent(event)` for each event but `hello` and `resync`;
   *   `onResync()` when events were lost and the page must reload its data;
   *   `onState(state)` with 'connecting', 'open' or 'closed'
   * @param {object} options `since`: the sequence number to replay after on the first
   *   connection (0 replays the room's whole history), or null for live events only
   */
  constructor(path, { onEvent = () => {}, onResync = () => {}, onState = () => {} } = {}, { since = null } = {}) {
    this.path = path;
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onState = onState;
    this.lastSeq = since;
    this.socket = null;
    this.retryMs = FIRST_RETRY_MS;
    this.retryTimer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  /** Closes the connection for good; no reconnect follows. */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
    this.socket = null;
    this.onState('closed');
  }

  /** Closes the connection and opens a new one that replays nothing: for a new room of the same path. */
  restart(since = null) {
    this.lastSeq = since;
    this.socket?.close();
    this.socket = null;
    clearTimeout(this.retryTimer);
    this.stopped = false;
    this.connect();
  }

  connect() {
    this.onState('connecting');
    const socket = new WebSocket(socketUrl(this.path, this.lastSeq));
    this.socket = socket;
    socket.addEventListener('open', () => {
      if (socket === this.socket) {
        this.retryMs = FIRST_RETRY_MS;
        this.onState('open');
      }
    });
    socket.addEventListener('message', (message) => {
      if (socket === this.socket) {
        this.receive(message.data);
      }
    });
    socket.addEventListener('close', () => {
      if (socket !== this.socket || this.stopped) {
        return;
      }
      this.socket = null;
      this.onState('closed');
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    });
  }

  receive(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      console.warn('Ignoring a live event that is not JSON:', text);
      return;
    }
    if (typeof event.seq === 'number') {
      this.lastSeq = event.seq;
    }
    if (event.type === 'hello') {
      if (event.resync) {
        this.onResync();
      }
      return;
    }
    if (event.type === 'resync') {
      this.onResync();
      return;
    }
    this.onEvent(event);
  }
}
