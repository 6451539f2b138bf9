// The lead's active-learning page: starts a model run, shows its progress from the study's
// event stream, switches pre-annotation, moves the threshold of the sensitivity and
// specificity read-out, and accepts pseudolabel proposals. When a run ends the page reloads,
// because the server renders the run's tables and figures.

import { request as send } from './api.js';
import { LiveSocket } from './live.js';

const root = document.getElementById('active-learning');
const slug = root.dataset.slug;
const base = `/api/v1/projects/${encodeURIComponent(slug)}`;
const byId = (id) => document.getElementById(id);

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle('error', isError);
}

// ---- Starting a run and following it ----

const runStatus = byId('run-status');
const runProgress = byId('run-progress');
let followedRun = root.dataset.runningRun ? Number(root.dataset.runningRun) : null;

function showProgress(event) {
  runProgress.hidden = false;
  runProgress.value = event.progress;
  setStatus(runStatus, `Run ${event.run_id}: ${event.stage}, ${Math.round(event.progress * 100)}% done.`);
  const row = document.querySelector(`#runs tr[data-run="${event.run_id}"]`);
  if (row) {
    row.querySelector('[data-column="status"]').textContent = event.status;
    row.querySelector('[data-column="progress"]').textContent = `${Math.round(event.progress * 100)}%`;
  }
}

function onRunEvent(event) {
  if (event.type !== 'model_run' || (followedRun !== null && event.run_id !== followedRun)) {
    return;
  }
  if (event.status === 'running') {
    followedRun = event.run_id;
    showProgress(event);
    return;
  }
  if (event.status === 'failed') {
    setStatus(runStatus, `Run ${event.run_id} failed: ${event.error ?? 'see the runs table'}. Reloading…`, true);
  } else {
    setStatus(runStatus, `Run ${event.run_id} finished. Reloading…`);
  }
  window.setTimeout(() => window.location.assign(`/studies/${encodeURIComponent(slug)}/active-learning?run=${event.run_id}`), 800);
}

/** Polls the run list while a run is followed, for runs started by `quorum al run`, which publishes no events. */
async function pollFollowedRun() {
  if (followedRun === null) {
    return;
  }
  try {
    const data = await send('GET', `${base}/model-runs/${followedRun}?limit=1`);
    const run = data.run;
    onRunEvent({ type: 'model_run', run_id: run.id, status: run.status, stage: run.stage, progress: run.progress, error: run.error });
  } catch (error) {
    console.warn('The run could not be read:', error);
  }
}

const live = new LiveSocket(`${base}/events`, { onEvent: onRunEvent, onResync: pollFollowedRun });
live.start();
window.setInterval(pollFollowedRun, 5000);

byId('run-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const data = new FormData(form);
  const request = {
    field: data.get('field'),
    strategy: data.get('strategy'),
    confidence_threshold: Number(data.get('confidence_threshold')),
  };
  const button = form.querySelector('button[type="submit"]');
  button.disabled = true;
  setStatus(runStatus, 'Starting the run…');
  try {
    const started = await send('POST', `${base}/model-runs`, request);
    followedRun = started.run_id;
    showProgress({ run_id: started.run_id, status: 'running', stage: 'starting', progress: 0 });
  } catch (error) {
    setStatus(runStatus, error.message, true);
  } finally {
    button.disabled = false;
  }
});

byId('preannotation').addEventListener('change', async (event) => {
  const checkbox = event.currentTarget;
  try {
    await send('PATCH', base, { preannotation: checkbox.checked });
    setStatus(runStatus, checkbox.checked ? 'Graders now see the newest run\u2019s proposals as suggestions.' : 'Graders no longer see proposals.');
  } catch (error) {
    checkbox.checked = !checkbox.checked;
    setStatus(runStatus, error.message, true);
  }
});

// ---- Sensitivity and specificity at a threshold ----

/**
 * Returns the rates when items with score >= `threshold` are positive. `points` has one
 * entry per distinct score, highest threshold first, so the result is the point with the
 * smallest threshold at or above `threshold`; above every score nothing is positive.
 */
function ratesAt(curve, threshold) {
  let chosen = null;
  for (const point of curve.points) {
    if (point.threshold >= threshold) {
      chosen = point;
    }
  }
  if (chosen === null) {
    return { sensitivity: curve.positives > 0 ? 0 : null, specificity: curve.negatives > 0 ? 1 : null };
  }
  return chosen;
}

function formatRate(value) {
  return value === null || value === undefined ? 'undefined (no such items held out)' : value.toFixed(3);
}

const cutoffData = byId('cutoff-data');
if (cutoffData) {
  const curves = JSON.parse(cutoffData.textContent);
  const select = byId('cutoff-select');
  const slider = byId('threshold-slider');
  const output = byId('threshold-value');
  const result = byId('cutoff-result');
  const preferred = Number(byId('cutoff-panel').dataset.defaultCutoff);
  for (const curve of curves) {
    const option = document.createElement('option');
    option.value = String(curve.cutoff);
    option.textContent = curve.label;
    option.selected = curve.cutoff === preferred;
    select.append(option);
  }
  const update = () => {
    const curve = curves.find((candidate) => String(candidate.cutoff) === select.value);
    const threshold = Number(slider.value);
    output.value = threshold.toFixed(2);
    if (!curve) {
      result.textContent = 'This run has no cut-off to evaluate.';
      return;
    }
    const rates = ratesAt(curve, threshold);
    const auc = curve.auc === null ? 'undefined' : curve.auc.toFixed(3);
    result.textContent = `Sensitivity ${formatRate(rates.sensitivity)}, specificity ${formatRate(rates.specificity)} `
      + `(${curve.positives} positive and ${curve.negatives} negative held-out items; area under the ROC curve ${auc}).`;
  };
  select.addEventListener('change', update);
  slider.addEventListener('input', update);
  update();
}

// ---- Accepting proposals ----

const acceptForm = byId('accept-form');
if (acceptForm) {
  const runId = acceptForm.dataset.run;
  const acceptStatus = byId('accept-status');
  const accept = async (request) => {
    setStatus(acceptStatus, 'Accepting…');
    try {
      const outcome = await send('POST', `${base}/model-runs/${runId}/accept`, request);
      const skipped = outcome.skipped ? `, ${outcome.skipped} passed over because their items left grading` : '';
      setStatus(acceptStatus, `${outcome.accepted.length} proposals accepted${skipped}. Reloading…`);
      window.setTimeout(() => window.location.reload(), 800);
    } catch (error) {
      setStatus(acceptStatus, error.message, true);
    }
  };
  acceptForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const itemIds = [...acceptForm.querySelectorAll('input[name="item"]:checked')].map((input) => Number(input.value));
    if (itemIds.length === 0) {
      setStatus(acceptStatus, 'Select at least one proposal first.', true);
      return;
    }
    accept({ item_ids: itemIds });
  });
  byId('accept-confident')?.addEventListener('click', () => {
    accept({ min_confidence: Number(byId('min-confidence').value) });
  });
}
