// The adjudication page of one item: the previous round's grades field by field, the
// discussion, who is present, the grader's re-grade form and, for seniors, the arbitration
// form. The item's room (a WebSocket) brings messages, presence, re-grades and status
// changes without reload.
//
// Blinding: a grader sees the other graders' answers of the previous round only, as the
// review endpoint returns them, and the re-grades of the open round only as the room
// announces them, under pseudonyms.

import { ApiError } from './api.js';
import { GradingForm } from './form.js';
import { LiveSocket } from './live.js';
import { ImageViewer, ZOOM_STEP, preloadImage } from './viewer.js';

const root = document.getElementById('adjudication');
const byId = (id) => document.getElementById(id);
const slug = root.dataset.slug;
const itemId = Number(root.dataset.itemId);
const fields = JSON.parse(root.dataset.fields);
const fieldsByName = new Map(fields.map((field) => [field.name, field]));
const base = `/api/v1/projects/${encodeURIComponent(slug)}`;
const itemBase = `${base}/items/${itemId}`;

const state = {
  status: root.dataset.status,
  round: Number(root.dataset.round),
  /** The review as the API returned it; its grades are the previous round's. */
  review: null,
  /** Message ids already on the page, since the room replays messages the page loaded. */
  messageIds: new Set(),
  /** Re-grades shown, by pseudonym: the latest answers of each grader in the open round. */
  regrades: new Map(),
  openedAt: performance.now(),
  live: null,
};

// ---- Requests ----

async function requestJson(method, path, body) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'network', `The server could not be reached (${error.message}). Check the connection and try again.`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code || 'http', error.message || `${method} ${path} failed with HTTP status ${response.status}.`, error.field ?? null, error.allowed ?? null);
  }
  return data;
}

// ---- Small helpers ----

function element(tag, { className, text, dataset } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  Object.assign(node.dataset, dataset ?? {});
  node.append(...children);
  return node;
}

function setStatus(text, kind = 'info') {
  const status = byId('status');
  status.className = `status status-${kind}`;
  status.textContent = text;
}

/** An answer as stored (a value, a list of values or null) in the words of the guideline. */
function answerLabel(fieldName, answer) {
  if (answer === null || answer === undefined) {
    return 'not asked';
  }
  const field = fieldsByName.get(fieldName);
  const values = Array.isArray(answer) ? answer : [answer];
  if (values.length === 0) {
    return 'none';
  }
  return values.map((value) => field?.options?.find((option) => option.value === value)?.label ?? value).join(', ');
}

/** An answer in the short form of the re-grade notes: `2`, or `a, b` for several values. */
function answerValue(answer) {
  if (answer === null || answer === undefined) {
    return 'not asked';
  }
  return Array.isArray(answer) ? answer.join(', ') || 'none' : String(answer);
}

function sameAnswer(left, right) {
  return JSON.stringify(left ?? null) === JSON.stringify(right ?? null);
}

function formatTime(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// ---- Image ----

const viewer = new ImageViewer({
  stage: byId('viewer-stage'),
  zoomOutput: byId('zoom-level'),
  brightnessInput: byId('brightness'),
  contrastInput: byId('contrast'),
  originalButton: byId('full-resolution'),
  message: byId('viewer-message'),
});
root.querySelector('[data-viewer="zoom-in"]').addEventListener('click', () => viewer.zoomBy(ZOOM_STEP));
root.querySelector('[data-viewer="zoom-out"]').addEventListener('click', () => viewer.zoomBy(1 / ZOOM_STEP));
root.querySelector('[data-viewer="reset"]').addEventListener('click', () => viewer.reset());

async function showImage() {
  try {
    const image = await preloadImage(`${itemBase}/image/display`);
    viewer.show(image, { originalUrl: `${itemBase}/image/original`, alt: `Image ${itemId}` });
  } catch (error) {
    viewer.clear(`The image could not be loaded: ${error.message}`);
  }
}

// ---- Status ----

function setItemStatus(status, round = state.round) {
  state.status = status;
  state.round = round;
  root.dataset.status = status;
  root.dataset.round = String(round);
  byId('item-status').textContent = status;
  byId('item-round').textContent = String(round);
  const arbitration = byId('arbitration-section');
  if (arbitration) {
    arbitration.hidden = status !== 'arbitration';
  }
  const regradeButton = byId('submit-regrade');
  if (regradeButton) {
    regradeButton.disabled = status !== 'adjudication';
  }
}

/** Words for a stored resolution method. */
const METHOD_LABELS = {
  unanimous: 'unanimous grades',
  majority: 'majority vote',
  arbitration: 'arbitration',
  adjudication: 'adjudication',
  model: 'model',
  imported: 'import',
};

/**
 * Shows the resolved banner with the parts of the resolution the page has: the final answers,
 * the method, the senior who decided and the reason. Any part may be null.
 */
function showResolved({ answers = null, method = null, decidedBy = null, reason = null } = {}) {
  setItemStatus('resolved');
  const banner = byId('resolved');
  banner.hidden = false;
  const list = byId('final-answer');
  list.replaceChildren();
  const facts = [
    ['Resolved by', method ? METHOD_LABELS[method] ?? method : null, 'method'],
    ['Decided by', decidedBy, 'decided-by'],
    ['Reason', reason, 'reason'],
  ];
  for (const [term, text, key] of facts) {
    if (text) {
      list.append(element('dt', { text: term }), element('dd', { text, dataset: { resolution: key } }));
    }
  }
  if (answers) {
    for (const field of fields) {
      if (field.name in answers) {
        list.append(
          element('dt', { text: field.label }),
          element('dd', { text: answerLabel(field.name, answers[field.name]), dataset: { field: field.name, value: answerValue(answers[field.name]) } }),
        );
      }
    }
  }
  for (const form of [byId('regrade-form'), byId('arbitration-form')]) {
    if (form) {
      for (const control of form.elements) {
        control.disabled = true;
      }
    }
  }
  // The room closes to graders once the item left adjudication: stop reconnecting.
  state.live?.stop();
}

/** Shows the resolution of a review, which only seniors and leads receive. */
function showReviewResolution(review) {
  const resolution = review.resolution;
  if (!resolution) {
    return false;
  }
  showResolved({
    answers: resolution.answers,
    method: resolution.method,
    decidedBy: resolution.decided_by,
    reason: resolution.reason,
  });
  return true;
}

/** Reloads the review after the item resolved, for the resolution's details; graders get 403 then. */
async function refreshResolution() {
  try {
    const review = await requestJson('GET', `${itemBase}/review`);
    showReviewResolution(review);
  } catch {
    // The banner keeps what the page knew.
  }
}

// ---- Rubric ----

function renderRubricField(fieldRubric) {
  const rows = fieldRubric.answers.map((entry) =>
    element('li', { dataset: { value: answerValue(entry.answer) } }, [
      element('span', { className: 'rubric-answer', text: answerLabel(fieldRubric.field, entry.answer) }),
      ' ',
      element('span', { className: 'rubric-who', text: entry.pseudonyms.join(', ') }),
    ]),
  );
  const children = [element('h3', { text: fieldRubric.label }), element('ul', {}, rows)];
  if (fieldRubric.advice?.posterior?.length) {
    const best = [...fieldRubric.advice.posterior].sort((a, b) => b.probability - a.probability)[0];
    children.push(
      element('p', {
        className: 'meta advice',
        text: `Model advice: ${answerLabel(fieldRubric.field, best.answer)} (${Math.round(best.probability * 100)} %)`,
      }),
    );
  }
  return element('div', { className: fieldRubric.disputed ? 'rubric-field disputed' : 'rubric-field', dataset: { field: fieldRubric.field } }, children);
}

/** Formats a duration in milliseconds as `1 min 05 s` or `42 s`. */
function formatDuration(ms) {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) {
    return `${seconds} s`;
  }
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/** Lists each grade of the reviewed round: pseudonym, time spent, submission time and comment. */
function renderGrades(grades) {
  const items = grades.map((grade) =>
    element('li', { dataset: { pseudonym: grade.pseudonym, gradeId: String(grade.grade_id) } }, [
      element('span', { className: 'grade-who', text: grade.pseudonym }),
      element('span', {
        className: 'meta grade-time',
        text: ` · ${formatDuration(grade.time_spent_ms)} spent · submitted ${formatTime(grade.created_at)}`,
      }),
      element('p', { className: 'grade-comment', text: grade.comment ? `“${grade.comment}”` : 'No comment.' }),
    ]),
  );
  if (items.length === 0) {
    items.push(element('li', { className: 'meta', text: 'No grades in this round.' }));
  }
  byId('grade-list').replaceChildren(...items);
}

function renderReview(review) {
  state.review = review;
  byId('reviewed-round').textContent = String(review.reviewed_round);
  byId('grades-round').textContent = String(review.reviewed_round);
  renderGrades(review.grades);
  const disputed = review.fields.filter((field) => field.disputed);
  const agreed = review.fields.filter((field) => !field.disputed && field.answers.some((entry) => entry.answer !== null));
  byId('rubric').replaceChildren(...disputed.map(renderRubricField));
  if (disputed.length === 0) {
    byId('rubric').append(element('p', { className: 'meta', text: 'The graders gave the same answers to every field.' }));
  }
  byId('agreed-rubric').replaceChildren(...agreed.map(renderRubricField));
  byId('agreed-fields').hidden = agreed.length === 0;
  // Seniors and leads also see the re-grades of the open round so far.
  for (const grade of review.current_round?.grades ?? []) {
    showRegrade({ grader: grade.pseudonym, answers: grade.answers, comment: grade.comment, status: review.status });
  }
}

async function loadReview() {
  const review = await requestJson('GET', `${itemBase}/review`);
  renderReview(review);
  setItemStatus(review.status, review.round);
  return review;
}

// ---- Re-grades ----

/** The previous round's answers of one grader, from the review. */
function previousAnswers(pseudonym) {
  return state.review?.grades.find((grade) => grade.pseudonym === pseudonym)?.answers ?? null;
}

/** Adds "Grader B re-graded: dr_severity 2" to the re-grade list, replacing that grader's earlier note. */
function showRegrade(event) {
  const grader = event.grader ?? 'A grader';
  state.regrades.set(grader, event.answers);
  const before = previousAnswers(grader);
  const names = new Set([...Object.keys(event.answers ?? {}), ...Object.keys(before ?? {})]);
  let changes = [...names].filter((name) => before && !sameAnswer(before[name], event.answers?.[name]));
  let summary;
  if (changes.length === 0) {
    const disputed = state.review?.fields.filter((field) => field.disputed).map((field) => field.field) ?? [];
    changes = disputed.filter((name) => name in (event.answers ?? {}));
    summary = changes.length ? `${changes.map((name) => `${name} ${answerValue(event.answers[name])}`).join(', ')} (unchanged)` : 'no changes';
  } else {
    summary = changes.map((name) => `${name} ${answerValue(event.answers?.[name])}`).join(', ');
  }
  const list = byId('regrades');
  list.querySelector('.empty')?.remove();
  list.querySelector(`li[data-grader="${CSS.escape(grader)}"]`)?.remove();
  const text = `${grader} re-graded: ${summary}`;
  const item = element('li', { text, dataset: { grader } });
  if (event.comment) {
    item.append(element('span', { className: 'meta', text: ` · “${event.comment}”` }));
  }
  list.append(item);
}

async function handleRegrade(event) {
  showRegrade(event);
  if (event.status === 'resolved') {
    showResolved({ answers: event.answers, method: 'adjudication' });
    await refreshResolution();
    return;
  }
  if (event.status !== state.status) {
    setItemStatus(event.status);
  }
  if (event.status === 'adjudication') {
    // When the round ended without agreement, a new round opens: reload for its room.
    await checkForNewRound();
  } else if (event.status === 'arbitration') {
    setStatus('The graders did not agree; the image goes to a senior for arbitration.');
    state.live?.stop();
    if (byId('arbitration-section')) {
      await loadReview().catch(() => {});
    }
  }
}

async function checkForNewRound() {
  let review;
  try {
    review = await requestJson('GET', `${itemBase}/review`);
  } catch {
    return;
  }
  if (review.round === state.round) {
    return;
  }
  state.regrades.clear();
  byId('regrades').replaceChildren(element('li', { className: 'meta empty', text: 'No re-grades yet in this round.' }));
  renderReview(review);
  setItemStatus(review.status, review.round);
  setStatus(`No agreement yet: round ${review.round} has started. Compare the grades again and re-grade.`);
  state.live?.restart(0);
}

// ---- Discussion ----

function showMessage(message) {
  if (state.messageIds.has(message.message_id)) {
    return;
  }
  state.messageIds.add(message.message_id);
  const item = element('li', { className: 'message', dataset: { messageId: String(message.message_id) } }, [
    element('span', { className: 'message-author', text: message.author }),
    element('span', { className: 'meta', text: ` · round ${message.round} · ${formatTime(message.created_at)}` }),
    element('p', { className: 'message-body', text: message.body }),
  ]);
  const list = byId('messages');
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

async function loadMessages() {
  const { messages } = await requestJson('GET', `${itemBase}/messages`);
  for (const message of messages) {
    showMessage(message);
  }
}

byId('message-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = byId('message-body');
  const body = input.value.trim();
  if (!body) {
    input.focus();
    return;
  }
  const button = byId('send-message');
  button.disabled = true;
  try {
    const message = await requestJson('POST', `${itemBase}/messages`, { body });
    showMessage(message);
    input.value = '';
    setStatus('');
  } catch (error) {
    setStatus(`The message was not sent: ${error.message}`, 'error');
  } finally {
    button.disabled = false;
  }
});

byId('message-body').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    byId('message-form').requestSubmit();
  }
});

// ---- Presence ----

function showPresence(names) {
  const list = byId('presence');
  if (names.length === 0) {
    list.replaceChildren(element('li', { className: 'meta', text: 'Nobody yet' }));
    return;
  }
  list.replaceChildren(...names.map((name) => element('li', { text: name, dataset: { pseudonym: name } })));
}

// ---- Forms ----

/** Shows the first missing required field of `form`; returns false when one is missing. */
function checkRequired(form) {
  const missing = form.missingRequired();
  for (const name of missing) {
    form.showError(name, 'Answer this field.');
  }
  if (missing.length) {
    form.focusField(missing[0]);
    return false;
  }
  return true;
}

function showFieldError(form, error) {
  if (error instanceof ApiError && error.field && form.field(error.field)) {
    form.showError(error.field, error.message);
    form.focusField(error.field);
  }
}

async function setUpRegradeForm() {
  const formElement = byId('regrade-form');
  if (!formElement) {
    return;
  }
  const form = new GradingForm(byId('fields'), { onAnswer: () => setStatus('') });
  form.build(fields);
  try {
    const own = await requestJson('GET', `${itemBase}/my-grade`);
    form.setAnswers(own.answers);
    byId('regrade-comment').value = own.comment ?? '';
  } catch (error) {
    setStatus(`Your previous grade could not be loaded: ${error.message}`, 'error');
  }
  formElement.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.clearErrors();
    if (!checkRequired(form)) {
      setStatus('Answer the required fields first.', 'error');
      return;
    }
    const button = byId('submit-regrade');
    button.disabled = true;
    try {
      await requestJson('POST', `${itemBase}/grades`, {
        answers: form.collectAnswers(),
        comment: byId('regrade-comment').value,
        time_spent_ms: Math.round(performance.now() - state.openedAt),
      });
      setStatus('Your re-grade is saved. You can change it until the round ends.');
    } catch (error) {
      showFieldError(form, error);
      setStatus(`The re-grade was not saved: ${error.message}`, 'error');
    } finally {
      button.disabled = state.status !== 'adjudication';
    }
  });
}

function setUpArbitrationForm() {
  const formElement = byId('arbitration-form');
  if (!formElement) {
    return;
  }
  const form = new GradingForm(byId('arbitration-fields'), { onAnswer: () => setStatus('') });
  form.build(fields);
  // Start from the majority answers, so the senior changes only what needs deciding.
  const majority = {};
  for (const fieldRubric of state.review?.fields ?? []) {
    if (fieldRubric.majority && fieldRubric.majority.answer !== null) {
      majority[fieldRubric.field] = fieldRubric.majority.answer;
    }
  }
  form.setAnswers(majority);
  formElement.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.clearErrors();
    const reason = byId('arbitration-reason').value.trim();
    if (!checkRequired(form)) {
      setStatus('Answer the required fields first.', 'error');
      return;
    }
    if (!reason) {
      setStatus('Give the reason for the decision.', 'error');
      byId('arbitration-reason').focus();
      return;
    }
    const answers = form.collectAnswers();
    const button = byId('submit-arbitration');
    button.disabled = true;
    try {
      await requestJson('POST', `${itemBase}/arbitration`, { answers, reason });
      showResolved({ answers, method: 'arbitration', reason });
      setStatus('');
      await refreshResolution();
    } catch (error) {
      showFieldError(form, error);
      setStatus(`The decision was not saved: ${error.message}`, 'error');
      button.disabled = false;
    }
  });
}

// ---- Live room ----

function handleEvent(event) {
  switch (event.type) {
    case 'message':
      showMessage(event);
      break;
    case 'presence':
      showPresence(event.present ?? []);
      break;
    case 'regrade':
      handleRegrade(event);
      break;
    case 'item':
      if (event.status === 'resolved') {
        if (state.status !== 'resolved') {
          showResolved({ method: 'arbitration' });
          refreshResolution();
        }
      } else {
        setItemStatus(event.status);
        if (event.status !== 'adjudication') {
          state.live?.stop();
        }
      }
      break;
    default:
      break;
  }
}

function connectRoom() {
  const connection = byId('connection');
  // Since 0 replays the room's history: re-grades and presence from before the page opened.
  state.live = new LiveSocket(
    `${itemBase}/room`,
    {
      onEvent: handleEvent,
      onResync: () => {
        loadMessages().catch(() => {});
        loadReview().catch(() => {});
      },
      onState: (connectionState) => {
        connection.dataset.state = connectionState;
        connection.textContent = { connecting: 'connecting…', open: 'live', closed: 'offline' }[connectionState];
      },
    },
    { since: 0 },
  );
  state.live.start();
}

async function start() {
  showImage();
  try {
    await Promise.all([loadReview(), loadMessages()]);
  } catch (error) {
    setStatus(`The review could not be loaded: ${error.message}`, 'error');
    return;
  }
  await setUpRegradeForm();
  setUpArbitrationForm();
  if (state.status === 'resolved') {
    if (!showReviewResolution(state.review)) {
      showResolved();
    }
  } else {
    connectRoom();
  }
  root.dataset.ready = 'true';
}

start();
