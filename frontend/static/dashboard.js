// Live counts on the study dashboard of leads and seniors: listens to the study's event
// stream and, when an item changes status, reloads the counts into the `#status-counts`
// table, at most once per REFRESH_INTERVAL_MS.

import { LiveSocket } from './live.js';

const REFRESH_INTERVAL_MS = 500;

const table = document.getElementById('status-counts');
const slug = table?.dataset.slug;

/** Calls `refresh` at most once per `intervalMs`; calls during the wait are folded into one call at its end. */
function throttle(refresh, intervalMs) {
  let lastRun = 0;
  let timer = null;
  return () => {
    if (timer !== null) {
      return;
    }
    const wait = Math.max(0, lastRun + intervalMs - Date.now());
    timer = setTimeout(async () => {
      lastRun = Date.now();
      try {
        await refresh();
      } finally {
        timer = null;
      }
    }, wait);
  };
}

/** Writes `count` into the row of `status`, adding the row when the table has none yet. */
function setCount(body, status, count) {
  let row = body.querySelector(`tr[data-status="${CSS.escape(status)}"]`);
  if (!row) {
    row = document.createElement('tr');
    row.dataset.status = status;
    const name = document.createElement('td');
    name.textContent = status;
    const number = document.createElement('td');
    number.className = 'num';
    row.append(name, number);
    body.append(row);
  }
  const cell = row.querySelector('.num');
  if (cell.textContent !== String(count)) {
    cell.textContent = String(count);
    row.classList.remove('changed');
    // Restart the highlight animation of a changed row.
    void row.offsetWidth;
    row.classList.add('changed');
  }
}

async function refreshCounts() {
  const response = await fetch(`/api/v1/projects/${encodeURIComponent(slug)}`, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  });
  if (!response.ok) {
    console.warn(`The status counts could not be refreshed: HTTP status ${response.status}`);
    return;
  }
  const project = await response.json();
  const byStatus = project.items_by_status;
  if (!byStatus) {
    return;
  }
  const body = table.tBodies[0];
  const known = new Set(Object.keys(byStatus));
  for (const [status, count] of Object.entries(byStatus)) {
    setCount(body, status, count);
  }
  // A status the server no longer lists has no items left.
  for (const row of body.querySelectorAll('tr[data-status]')) {
    if (!known.has(row.dataset.status)) {
      setCount(body, row.dataset.status, 0);
    }
  }
  const total = table.tFoot?.querySelector('.num');
  if (total) {
    total.textContent = String(project.item_count);
  }
}

if (table && slug) {
  const scheduleRefresh = throttle(refreshCounts, REFRESH_INTERVAL_MS);
  const live = new LiveSocket(`/api/v1/projects/${encodeURIComponent(slug)}/events`, {
    onEvent: (event) => {
      if (event.type === 'item') {
        scheduleRefresh();
      }
    },
    onResync: scheduleRefresh,
    onState: (state) => {
      table.dataset.live = state;
      // Events of a drop before the first one arrived cannot be replayed: reload the counts.
      if (state === 'open') {
        scheduleRefresh();
      }
    },
  });
  live.start();
}
