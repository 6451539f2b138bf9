// The grading page: shows the grader's next image and the guideline's form, submits grades
// and corrections, and keeps the page usable from the keyboard alone.
//
// Blinding: the page only ever requests the caller's own next item, own grade and own
// progress, and it keeps answers in memory only, never in browser storage, so nothing of one
// grader's work is left for the next person at the same computer.

import { ApiError, createApi } from './api.js';
import { GradingForm } from './form.js';
import { SHORTCUTS, installShortcuts } from './shortcuts.js';
import { FILTER_STEP, ImageViewer, ZOOM_STEP, preloadImage } from './viewer.js';

/** Browser storage key of the "move to the next field after a digit" setting. */
const ADVANCE_SETTING_KEY = 'quorum.grading.advanceAfterDigit';
const UNGRADABLE_VALUE = 'ungradable';

const root = document.getElementById('grading');
const api = createApi(root.dataset.slug);
const byId = (id) => document.getElementById(id);

const elements = {
  formElement: byId('grade-form'),
  comment: byId('comment'),
  submitButton: byId('submit-grade'),
  status: byId('status'),
  gradedToday: byId('graded-today'),
  remaining: byId('remaining'),
  guidelineTitle: byId('guideline-title'),
  caption: byId('image-caption'),
  correctionBanner: byId('correction-banner'),
  correctionText: byId('correction-text'),
  done: byId('done'),
  history: byId('history'),
  historyList: byId('history-list'),
  definitionsPanel: byId('definitions-panel'),
  definitionsTitle: byId('definitions-title'),
  definitionsBody: byId('definitions-body'),
  helpPanel: byId('help-panel'),
  advanceSetting: byId('advance-setting'),
  suggestion: byId('suggestion'),
  suggestionText: byId('suggestion-text'),
  useSuggestion: byId('use-suggestion'),
};

const viewer = new ImageViewer({
  stage: byId('viewer-stage'),
  zoomOutput: byId('zoom-level'),
  brightnessInput: byId('brightness'),
  contrastInput: byId('contrast'),
  originalButton: byId('full-resolution'),
  message: byId('viewer-message'),
});

const form = new GradingForm(byId('fields'), { onAnswer: () => clearStatus() });

/** Time on one item, counted only while the item is on screen. */
class Stopwatch {
  constructor() {
    this.elapsedMs = 0;
    this.startedAt = null;
  }

  start() {
    if (this.startedAt === null) {
      this.startedAt = performance.now();
    }
  }

  pause() {
    if (this.startedAt !== null) {
      this.elapsedMs += performance.now() - this.startedAt;
      this.startedAt = null;
    }
  }

  get ms() {
    const running = this.startedAt === null ? 0 : performance.now() - this.startedAt;
    return Math.round(this.elapsedMs + running);
  }
}

const state = {
  /** 'loading', 'grading' (the leased item), 'correcting' (an earlier item), 'done' or 'failed'. */
  mode: 'loading',
  /** True while a request started by the grader is running; a submit or reopen meanwhile is ignored. */
  busy: false,
  /** The leased item, as `next` returned it, or null. */
  current: null,
  currentTimer: null,
  /** Answers and comment of the leased item, kept while a correction is on screen. */
  currentDraft: null,
  /** The history entry being corrected, or null. */
  correcting: null,
  correctionTimer: null,
  /** Items graded on this page, newest first. */
  history: [],
  leaseTimer: null,
};

// ---- Status line, progress and page sections ----

/**
 * Shows a message under the progress line. `kind` is 'info' or 'error'; `action` adds a
 * button `{label, run}` and `link` a link `{label, href, newTab}`.
 */
function setStatus(text, { kind = 'info', action = null, link = null } = {}) {
  const status = elements.status;
  status.replaceChildren();
  status.className = `status status-${kind}`;
  if (!text) {
    return;
  }
  status.append(text);
  if (link) {
    const anchor = document.createElement('a');
    anchor.href = link.href;
    anchor.textContent = link.label;
    if (link.newTab) {
      anchor.target = '_blank';
      anchor.rel = 'noopener';
    }
    status.append(' ', anchor);
  }
  if (action) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = action.label;
    button.addEventListener('click', action.run);
    status.append(' ', button);
  }
}

function clearStatus() {
  if (elements.status.classList.contains('status-error')) {
    setStatus('');
  }
}

function updateProgress(progress) {
  if (!progress) {
    return;
  }
  elements.gradedToday.textContent = String(progress.graded_today);
  elements.remaining.textContent = String(progress.remaining);
}

async function refreshProgress() {
  try {
    updateProgress(await api.progress());
  } catch (error) {
    // The counters are informative only; a stale value is shown until the next item loads.
    console.warn('The progress counters could not be refreshed:', error);
  }
}

/** Sets the page mode; `data-mode` and `data-item-id` on the page root mirror it for tests and styles. */
function setMode(mode, itemId = null) {
  state.mode = mode;
  root.dataset.mode = mode;
  if (itemId === null) {
    delete root.dataset.itemId;
  } else {
    root.dataset.itemId = String(itemId);
  }
}

function setBusy(busy) {
  state.busy = busy;
  elements.formElement.setAttribute('aria-busy', String(busy));
  elements.submitButton.disabled = busy;
  root.classList.toggle('busy', busy);
}

/** Shows the form, the end-of-study message, or neither (while loading or after a failure). */
function showSection(section) {
  elements.formElement.hidden = section !== 'form';
  elements.done.hidden = section !== 'done';
}

function formatTime(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// ---- Showing items ----

/**
 * Shows the model's proposal for the item when the server sent one. The server sends
 * `suggestion` only when the study has pre-annotation on; the grader still chooses the answer.
 */
function showSuggestion(item) {
  const suggestion = item.suggestion;
  const field = suggestion ? item.fields.find((candidate) => candidate.name === suggestion.field) : null;
  if (!suggestion || !field) {
    elements.suggestion.hidden = true;
    elements.suggestionText.textContent = '';
    return;
  }
  const option = field.options.find((candidate) => candidate.value === suggestion.value);
  const label = option ? `${option.label} (${option.value})` : suggestion.value;
  const percent = Math.round(suggestion.confidence * 100);
  elements.suggestionText.textContent = `Model suggestion for ${field.label}: ${label}, confidence ${percent}%.`;
  elements.useSuggestion.onclick = () => {
    if (!form.pickValue(suggestion.field, suggestion.value)) {
      setStatus(`The suggestion cannot be chosen until the questions before ${field.label} are answered.`, { kind: 'error' });
    }
  };
  elements.suggestion.hidden = false;
}

/** Renders an item's image and form, fills in `draft` answers and focuses the first open field. */
function presentItem(item, image, draft) {
  form.build(item.fields);
  form.setAnswers(draft.answers);
  showSuggestion(item);
  elements.comment.value = draft.comment;
  viewer.show(image, { originalUrl: item.original_url, alt: `Image ${item.item_id}` });
  elements.caption.textContent = `Image ${item.item_id}`;
  if (item.guideline) {
    elements.guidelineTitle.textContent = `Guideline: ${item.guideline.title} (version ${item.guideline.version})`;
  }
  showSection('form');
  if (!elements.definitionsPanel.hidden) {
    renderDefinitions(form.fields[0]?.name);
  }
  form.focusFirstOpen();
}

function emptyDraft() {
  return { answers: {}, comment: '' };
}

/** Requests the next item and shows it once its image is decoded. The caller sets busy. */
async function loadNextItem() {
  setMode('loading');
  state.current = null;
  setStatus('Loading the next image…');
  let item;
  let image;
  try {
    item = await api.next();
    if (item) {
      updateProgress(item.progress);
      image = await preloadImage(item.image_url);
    }
  } catch (error) {
    showFailure(error, 'The next image could not be loaded.');
    return;
  }

  if (!item) {
    state.current = null;
    showDone();
    await refreshProgress();
    return;
  }
  state.current = item;
  state.currentTimer = new Stopwatch();
  setMode('grading', item.item_id);
  presentItem(item, image, emptyDraft());
  setStatus('');
  state.currentTimer.start();
  watchLease(item);
}

function showDone() {
  setMode('done');
  form.build([]);
  viewer.clear('No image to show.');
  elements.caption.textContent = '';
  showSection('done');
  setStatus('');
}

/** Shows why loading failed, with a button that tries again. */
function showFailure(error, what) {
  setMode('failed');
  showSection('none');
  viewer.clear(what);
  if (error instanceof ApiError && error.status === 401) {
    setStatus(`${what} Your session has ended.`, { kind: 'error', link: { label: 'Log in again', href: '/login' } });
    return;
  }
  setStatus(`${what} ${error.message}`, { kind: 'error', action: { label: 'Try again', run: () => runBusy(loadNextItem) } });
}

/** Warns when the lease on the item on screen runs out, since the server may then give it away. */
function watchLease(item) {
  clearTimeout(state.leaseTimer);
  const remainingMs = item.lease_expires_at - Date.now();
  // setTimeout fires at once for delays above 2^31 - 1 ms (about 24 days).
  if (!Number.isFinite(remainingMs) || remainingMs > 2 ** 31 - 1) {
    return;
  }
  state.leaseTimer = setTimeout(() => {
    if (state.current === item && state.mode === 'grading') {
      setStatus(
        `Your hold on this image expired at ${formatTime(item.lease_expires_at)}. ` +
          'Submit soon: once another grader has taken its place, the server rejects your grade.',
        { kind: 'error' },
      );
    }
  }, Math.max(0, remainingMs));
}

/** Runs `task` with the page marked busy; a second task started meanwhile is ignored. */
async function runBusy(task) {
  if (state.busy) {
    return;
  }
  setBusy(true);
  try {
    await task();
  } finally {
    setBusy(false);
  }
}

// ---- Submitting ----

function submit() {
  if (state.mode !== 'grading' && state.mode !== 'correcting') {
    return;
  }
  runBusy(submitShown);
}

async function submitShown() {
  form.clearErrors();
  const missing = form.missingRequired();
  if (missing.length > 0) {
    for (const name of missing) {
      const field = form.field(name);
      const hint = field.kind === 'text' ? 'enter a text' : 'choose an answer';
      form.showError(name, `${field.label} is required: ${hint}.`);
    }
    form.focusField(missing[0]);
    const count = missing.length === 1 ? 'One required field has' : `${missing.length} required fields have`;
    setStatus(`${count} no answer. Nothing was sent.`, { kind: 'error' });
    return;
  }

  const correcting = state.mode === 'correcting';
  const item = correcting ? state.correcting : state.current;
  const timer = correcting ? state.correctionTimer : state.currentTimer;
  const grade = {
    answers: form.collectAnswers(),
    comment: elements.comment.value,
    time_spent_ms: timer.ms,
  };
  setStatus(correcting ? 'Saving the correction…' : 'Saving…');
  try {
    await api.submitGrade(item.item_id, grade);
  } catch (error) {
    showSubmitError(error, correcting);
    return;
  }

  if (correcting) {
    item.correctedAt = Date.now();
    renderHistory();
    await refreshProgress();
    await leaveCorrection();
    setStatus(`Correction of image ${item.item_id} saved.`);
    return;
  }
  clearTimeout(state.leaseTimer);
  state.history.unshift({
    item_id: item.item_id,
    round: item.round,
    image_url: item.image_url,
    thumbnail_url: item.thumbnail_url,
    original_url: item.original_url,
    guideline: item.guideline,
    fields: item.fields,
    gradedAt: Date.now(),
    correctedAt: null,
  });
  renderHistory();
  await loadNextItem();
  if (state.mode === 'grading' || state.mode === 'done') {
    setStatus(`Grade of image ${item.item_id} saved.`);
  }
}

/** Shows a rejected submission next to the field it names, or in the status line. */
function showSubmitError(error, correcting) {
  if (!(error instanceof ApiError)) {
    setStatus(`The grade was not saved: ${error.message}`, { kind: 'error' });
    return;
  }
  const loadNext = { label: 'Load the next image', run: () => runBusy(loadNextItem) };
  switch (error.status) {
    case 422:
      if (error.field && form.showError(error.field, error.message)) {
        form.focusField(error.field);
        setStatus(`The server rejected the grade: see the message at “${form.field(error.field).label}”.`, { kind: 'error' });
      } else {
        setStatus(`The server rejected the grade: ${error.message}`, { kind: 'error' });
      }
      return;
    case 409:
      if (correcting) {
        setStatus('This item is already resolved and can no longer be changed.', { kind: 'error' });
      } else {
        setStatus(`The grade was not saved: ${error.message}`, { kind: 'error', action: loadNext });
      }
      return;
    case 403:
      setStatus(`The grade was not saved: ${error.message}`, { kind: 'error', action: correcting ? null : loadNext });
      return;
    case 401:
      setStatus('The grade was not saved because your session has ended. Log in again in a new tab, then press Enter here to submit again.', {
        kind: 'error',
        link: { label: 'Log in', href: '/login', newTab: true },
      });
      return;
    default:
      setStatus(`The grade was not saved: ${error.message} Press Enter to try again.`, { kind: 'error' });
  }
}

// ---- Corrections ----

function renderHistory() {
  elements.history.hidden = state.history.length === 0;
  const rows = state.history.map((entry) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'history-entry';
    button.dataset.itemId = String(entry.item_id);
    if (state.correcting === entry) {
      button.setAttribute('aria-current', 'true');
    }
    const thumbnail = document.createElement('img');
    thumbnail.src = entry.thumbnail_url;
    thumbnail.alt = '';
    thumbnail.loading = 'lazy';
    const label = document.createElement('span');
    const corrected = entry.correctedAt ? `, corrected ${formatTime(entry.correctedAt)}` : '';
    label.textContent = `Image ${entry.item_id}, graded ${formatTime(entry.gradedAt)}${corrected}`;
    button.append(thumbnail, label);
    button.addEventListener('click', () => runBusy(() => openCorrection(entry)));
    const row = document.createElement('li');
    row.append(button);
    return row;
  });
  elements.historyList.replaceChildren(...rows);
}

/** Loads the grader's own grade of an earlier item into the form. */
async function openCorrection(entry) {
  if (state.correcting === entry) {
    return;
  }
  setStatus(`Loading your grade of image ${entry.item_id}…`);
  let grade;
  let image;
  try {
    [grade, image] = await Promise.all([api.myGrade(entry.item_id), preloadImage(entry.image_url)]);
  } catch (error) {
    const reason = error instanceof ApiError && error.status === 404 ? `You have no saved grade of image ${entry.item_id}.` : error.message;
    setStatus(`Your grade could not be opened. ${reason}`, { kind: 'error' });
    return;
  }

  if (state.mode === 'grading') {
    state.currentDraft = { answers: form.collectAnswers(), comment: elements.comment.value };
    state.currentTimer.pause();
  }
  setMode('correcting', entry.item_id);
  state.correcting = entry;
  state.correctionTimer = new Stopwatch();
  presentItem(entry, image, { answers: grade.answers ?? {}, comment: grade.comment ?? '' });
  elements.correctionText.textContent = `Correcting your grade of image ${entry.item_id}. Submitting saves a correction that replaces it.`;
  elements.correctionBanner.hidden = false;
  elements.submitButton.textContent = 'Save correction';
  renderHistory();
  setStatus('');
  state.correctionTimer.start();
}

/** Returns from a correction to the leased item with its unsaved answers, or to the end message. */
async function leaveCorrection() {
  state.correcting = null;
  state.correctionTimer = null;
  elements.correctionBanner.hidden = true;
  elements.submitButton.textContent = 'Submit and next';
  renderHistory();
  if (!state.current) {
    // The end message or a failed load was on screen: ask the server again.
    await loadNextItem();
    return;
  }
  let image;
  try {
    image = await preloadImage(state.current.image_url);
  } catch (error) {
    showFailure(error, 'The current image could not be shown again.');
    return;
  }
  setMode('grading', state.current.item_id);
  presentItem(state.current, image, state.currentDraft ?? emptyDraft());
  state.currentDraft = null;
  state.currentTimer.start();
}

async function cancelCorrection() {
  if (state.mode !== 'correcting') {
    return;
  }
  await leaveCorrection();
  setStatus('Correction cancelled; your earlier grade is unchanged.');
}

// ---- Panels ----

function renderDefinitions(name) {
  const field = name ? form.field(name) : null;
  elements.definitionsBody.replaceChildren();
  if (!field) {
    elements.definitionsTitle.textContent = 'Definitions';
    const hint = document.createElement('p');
    hint.textContent = 'Focus a field to see the definitions of its options.';
    elements.definitionsBody.append(hint);
    return;
  }
  elements.definitionsTitle.textContent = field.label;
  if (field.help) {
    const help = document.createElement('p');
    help.className = 'field-help';
    help.textContent = field.help;
    elements.definitionsBody.append(help);
  }
  const list = document.createElement('dl');
  field.options.forEach((option, index) => {
    const term = document.createElement('dt');
    if (index < 9) {
      const key = document.createElement('kbd');
      key.textContent = String(index + 1);
      term.append(key, ' ');
    }
    term.append(option.label);
    const description = document.createElement('dd');
    description.textContent = option.definition || 'No definition is given.';
    const references = option.reference_images ?? [];
    if (references.length > 0) {
      const figures = document.createElement('div');
      figures.className = 'reference-images';
      references.forEach((url, referenceIndex) => {
        const link = document.createElement('a');
        link.href = url;
        link.target = '_blank';
        link.rel = 'noopener';
        const image = document.createElement('img');
        image.src = url;
        image.loading = 'lazy';
        image.alt = `Reference image ${referenceIndex + 1} for “${option.label}”`;
        link.append(image);
        figures.append(link);
      });
      description.append(figures);
    }
    list.append(term, description);
  });
  elements.definitionsBody.append(list);
}

function showDefinitions(name) {
  elements.helpPanel.hidden = true;
  renderDefinitions(name);
  elements.definitionsPanel.hidden = false;
}

function toggleDefinitions() {
  if (!elements.definitionsPanel.hidden) {
    elements.definitionsPanel.hidden = true;
    return;
  }
  showDefinitions(form.activeFieldName() ?? form.firstOpenName());
}

function toggleHelp() {
  const open = elements.helpPanel.hidden;
  elements.definitionsPanel.hidden = true;
  elements.helpPanel.hidden = !open;
}

function closePanels() {
  const open = !elements.helpPanel.hidden || !elements.definitionsPanel.hidden;
  elements.helpPanel.hidden = true;
  elements.definitionsPanel.hidden = true;
  return open;
}

function renderShortcutList() {
  const rows = SHORTCUTS.map(([keys, description]) => {
    const row = document.createElement('tr');
    const keyCell = document.createElement('th');
    keyCell.scope = 'row';
    keyCell.textContent = keys;
    const descriptionCell = document.createElement('td');
    descriptionCell.textContent = description;
    row.append(keyCell, descriptionCell);
    return row;
  });
  byId('shortcut-rows').replaceChildren(...rows);
}

// ---- Keyboard actions ----

function advanceAfterDigit() {
  return elements.advanceSetting.checked;
}

/** Moves focus past `name` after a keyboard answer: to the next field, else to the submit button. */
function advanceFrom(name) {
  if (!form.focusRelative(name, 1)) {
    elements.submitButton.focus();
  }
}

/** True when the form on screen takes answers: an item is shown and no request is running. */
function acceptsAnswers() {
  return !state.busy && (state.mode === 'grading' || state.mode === 'correcting');
}

function pickDigit(index) {
  if (!acceptsAnswers()) {
    return;
  }
  const name = form.fieldNameOf(document.activeElement) ?? form.firstOpenName();
  const field = name ? form.field(name) : null;
  if (!field || field.kind === 'text') {
    return;
  }
  if (!form.pickOption(name, index)) {
    setStatus(`“${field.label}” has ${field.options.length} options: use the keys 1 to ${Math.min(field.options.length, 9)}.`, { kind: 'error' });
    return;
  }
  if (field.kind !== 'multi-choice' && advanceAfterDigit()) {
    advanceFrom(name);
  }
}

function moveField(step) {
  const name = form.fieldNameOf(document.activeElement);
  if (name) {
    if (!form.focusRelative(name, step) && step > 0) {
      elements.submitButton.focus();
    }
    return true;
  }
  if (document.activeElement === elements.submitButton && step < 0) {
    const names = form.visibleNames();
    return form.focusField(names[names.length - 1]);
  }
  return false;
}

function moveOption(step) {
  return form.moveWithinGroup(document.activeElement, step);
}

function markUngradable() {
  if (!acceptsAnswers()) {
    return;
  }
  const field = form.fields.find((candidate) => form.isVisible(candidate.name) && candidate.options.some((option) => option.value === UNGRADABLE_VALUE));
  if (!field) {
    setStatus(`This guideline has no “${UNGRADABLE_VALUE}” option.`, { kind: 'error' });
    return;
  }
  form.pickValue(field.name, UNGRADABLE_VALUE);
  advanceFrom(field.name);
}

// ---- Start ----

/** Reads a page setting from browser storage; null when storage is unavailable or empty. */
function readSetting(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSetting(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch (error) {
    console.warn(`The setting ${key} could not be saved:`, error);
  }
}

function installControls() {
  elements.formElement.addEventListener('submit', (event) => {
    event.preventDefault();
    submit();
  });
  byId('cancel-correction').addEventListener('click', () => runBusy(cancelCorrection));
  byId('help-button').addEventListener('click', toggleHelp);
  byId('definitions-button').addEventListener('click', toggleDefinitions);
  for (const button of root.querySelectorAll('[data-close-panel]')) {
    button.addEventListener('click', closePanels);
  }
  root.querySelector('[data-viewer="zoom-in"]').addEventListener('click', () => viewer.zoomBy(ZOOM_STEP));
  root.querySelector('[data-viewer="zoom-out"]').addEventListener('click', () => viewer.zoomBy(1 / ZOOM_STEP));
  root.querySelector('[data-viewer="reset"]').addEventListener('click', () => viewer.reset());
  // Clicking a toolbar button leaves the focus in the form, so the digit keys keep working.
  for (const button of root.querySelectorAll('.viewer-toolbar button')) {
    button.addEventListener('mousedown', (event) => event.preventDefault());
  }

  byId('fields').addEventListener('focusin', (event) => {
    const name = form.fieldNameOf(event.target);
    if (name && !elements.definitionsPanel.hidden) {
      renderDefinitions(name);
    }
  });

  elements.advanceSetting.checked = readSetting(ADVANCE_SETTING_KEY) !== 'off';
  elements.advanceSetting.addEventListener('change', () => {
    writeSetting(ADVANCE_SETTING_KEY, elements.advanceSetting.checked ? 'on' : 'off');
  });

  installShortcuts({
    submit,
    pickDigit,
    moveField,
    moveOption,
    markUngradable,
    toggleDefinitions,
    toggleHelp,
    closePanels,
    zoom: (direction) => viewer.zoomBy(direction > 0 ? ZOOM_STEP : 1 / ZOOM_STEP),
    brightness: (direction) => viewer.setFilters(viewer.brightness + direction * FILTER_STEP, viewer.contrast),
    contrast: (direction) => viewer.setFilters(viewer.brightness, viewer.contrast + direction * FILTER_STEP),
    resetView: () => viewer.reset(),
    loadOriginal: () => viewer.loadOriginal(),
  });
}

renderShortcutList();
installControls();
runBusy(loadNextItem);
