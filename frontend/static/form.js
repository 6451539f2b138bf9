// The grading form, generated from a guideline's fields.
//
// Ordinal, nominal and boolean fields are radio groups, multi-choice fields are checkbox
// groups and text fields are text areas. A field with a condition is shown only while the
// field it names has one of the listed answers. A field that becomes hidden loses its answer,
// so hidden fields are never sent. Conditions refer to earlier fields only, so one pass in
// field order settles every field.

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') {
      node.textContent = value;
    } else if (name === 'className') {
      node.className = value;
    } else {
      node.setAttribute(name, value);
    }
  }
  node.append(...children);
  return node;
}

/** True when an answer (a string, a list of strings or null) counts as given. */
function isAnswered(value) {
  if (Array.isArray(value)) {
    return value.length > 0;
  }
  return typeof value === 'string' && value.trim() !== '';
}

/** True when a condition `{field, in}` holds for the answer of the field it names. */
function conditionHolds(condition, answer) {
  if (Array.isArray(answer)) {
    return answer.some((value) => condition.in.includes(value));
  }
  return typeof answer === 'string' && condition.in.includes(answer);
}

export class GradingForm {
  /**
   * @param {HTMLElement} container the element the fields are rendered into
   * @param {object} callbacks `onAnswer(name)`, called after a field's answer changes
   */
  constructor(container, { onAnswer = () => {} } = {}) {
    this.container = container;
    this.onAnswer = onAnswer;
    /** @type {Map<string, {field: object, root: HTMLElement, inputs: HTMLElement[], error: HTMLElement}>} */
    this.controls = new Map();
    this.lastFocusedName = null;

    container.addEventListener('change', (event) => {
      const name = this.fieldNameOf(event.target);
      if (name) {
        this.answerChanged(name);
      }
    });
    container.addEventListener('input', (event) => {
      const name = this.fieldNameOf(event.target);
      if (name && event.target.tagName === 'TEXTAREA') {
        this.answerChanged(name);
      }
    });
    container.addEventListener('focusin', (event) => {
      const name = this.fieldNameOf(event.target);
      if (!name) {
        return;
      }
      this.lastFocusedName = name;
      const control = this.controls.get(name);
      if (control.field.kind === 'multi-choice') {
        this.makeTabStop(control, event.target);
      }
    });
  }

  /** Renders the fields with no answers, replacing any earlier form. */
  build(fields) {
    this.controls.clear();
    this.lastFocusedName = null;
    const roots = fields.map((field, index) => this.buildField(field, index));
    this.container.replaceChildren(...roots);
    this.updateVisibility();
  }

  buildField(field, index) {
    const id = `field-${index}`;
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    // The status line announces how many answers are missing, so these messages are not
    // live regions: seven alerts at once would drown it. Each is tied to its field instead.
    const error = element('p', { className: 'field-error', id: errorId });
    error.hidden = true;
    const help = element('p', { className: 'visually-hidden', id: helpId, text: field.help || '' });
    const required = field.required
      ? [element('span', { className: 'required', 'aria-hidden': 'true', text: ' *' }), element('span', { className: 'visually-hidden', text: ' (required)' })]
      : [];

    let root;
    let inputs;
    if (field.kind === 'text') {
      const textarea = element('textarea', { id: `${id}-input`, rows: '2', autocomplete: 'off', 'aria-describedby': `${helpId} ${errorId}` });
      if (field.required) {
        textarea.setAttribute('aria-required', 'true');
      }
      const label = element('label', { for: textarea.id, id: `${id}-label`, className: 'field-heading' }, [field.label, ...required]);
      root = element('div', { className: 'field field-text', role: 'group', 'aria-labelledby': label.id }, [label, textarea, help, error]);
      inputs = [textarea];
    } else {
      const type = field.kind === 'multi-choice' ? 'checkbox' : 'radio';
      const options = element('div', { className: 'options' });
      inputs = field.options.map((option, optionIndex) => {
        const input = element('input', { type, name: `${id}-answer`, value: option.value });
        if (type === 'radio' && field.required) {
          input.required = true;
        }
        if (type === 'checkbox') {
          input.tabIndex = optionIndex === 0 ? 0 : -1;
        }
        const key = optionIndex < 9 ? [element('kbd', { 'aria-hidden': 'true', text: String(optionIndex + 1) })] : [];
        const label = element('label', { className: 'option' }, [input, ...key, element('span', { text: option.label })]);
        if (option.definition) {
          label.title = option.definition;
        }
        options.append(label);
        return input;
      });
      const legend = element('legend', { className: 'field-heading' }, [field.label, ...required]);
      root = element('fieldset', { className: `field field-${field.kind}`, 'aria-describedby': `${helpId} ${errorId}` }, [legend, options, help, error]);
    }
    root.id = id;
    root.dataset.field = field.name;
    this.controls.set(field.name, { field, root, inputs, error });
    return root;
  }

  get fields() {
    return [...this.controls.values()].map((control) => control.field);
  }

  field(name) {
    return this.controls.get(name)?.field ?? null;
  }

  isVisible(name) {
    const control = this.controls.get(name);
    return Boolean(control) && !control.root.hidden;
  }

  visibleNames() {
    return [...this.controls.keys()].filter((name) => this.isVisible(name));
  }

  /** The current answer of a field: a string, a list of strings (multi-choice) or null. */
  answerOf(name) {
    const control = this.controls.get(name);
    if (!control) {
      return null;
    }
    const { field, inputs } = control;
    if (field.kind === 'text') {
      return inputs[0].value;
    }
    if (field.kind === 'multi-choice') {
      return inputs.filter((input) => input.checked).map((input) => input.value);
    }
    const checked = inputs.find((input) => input.checked);
    return checked ? checked.value : null;
  }

  /** The answers of the visible, answered fields, in the shape the grades endpoint takes. */
  collectAnswers() {
    const answers = {};
    for (const name of this.visibleNames()) {
      const value = this.answerOf(name);
      if (isAnswered(value)) {
        answers[name] = value;
      }
    }
    return answers;
  }

  /** Names of the visible required fields that have no answer, in form order. */
  missingRequired() {
    return this.visibleNames().filter((name) => this.field(name).required && !isAnswered(this.answerOf(name)));
  }

  /** Fills the form with stored answers; values for unknown fields are ignored. */
  setAnswers(answers) {
    for (const [name, control] of this.controls) {
      const value = answers[name];
      const { field, inputs } = control;
      if (field.kind === 'text') {
        inputs[0].value = typeof value === 'string' ? value : '';
      } else {
        const chosen = Array.isArray(value) ? value : [value];
        for (const input of inputs) {
          input.checked = chosen.includes(input.value);
        }
      }
    }
    this.updateVisibility();
  }

  /** Selects option `index` (0-based) of a field; for multi-choice fields, toggles it. */
  pickOption(name, index) {
    const control = this.controls.get(name);
    if (!control || !this.isVisible(name) || control.field.kind === 'text') {
      return false;
    }
    const input = control.inputs[index];
    if (!input) {
      return false;
    }
    input.checked = control.field.kind === 'multi-choice' ? !input.checked : true;
    input.focus();
    this.answerChanged(name);
    return true;
  }

  /** Selects the option with the given value; returns false when the field lacks it. */
  pickValue(name, value) {
    const control = this.controls.get(name);
    const index = control ? control.field.options.findIndex((option) => option.value === value) : -1;
    if (index < 0) {
      return false;
    }
    if (control.field.kind === 'multi-choice' && control.inputs[index].checked) {
      return true;
    }
    return this.pickOption(name, index);
  }

  /** Shows a message under a visible field. Returns false when no such field is shown. */
  showError(name, message) {
    const control = this.controls.get(name);
    if (!control || !this.isVisible(name)) {
      return false;
    }
    control.error.textContent = message;
    control.error.hidden = false;
    control.root.classList.add('invalid');
    for (const input of control.inputs) {
      input.setAttribute('aria-invalid', 'true');
    }
    return true;
  }

  clearError(name) {
    const control = this.controls.get(name);
    if (!control) {
      return;
    }
    control.error.textContent = '';
    control.error.hidden = true;
    control.root.classList.remove('invalid');
    for (const input of control.inputs) {
      input.removeAttribute('aria-invalid');
    }
  }

  clearErrors() {
    for (const name of this.controls.keys()) {
      this.clearError(name);
    }
  }

  /** The name of the field that contains `node`, or null. */
  fieldNameOf(node) {
    const root = node instanceof Element ? node.closest('[data-field]') : null;
    return root && this.container.contains(root) ? root.dataset.field : null;
  }

  /** The field that has focus, else the one that had it last, if still visible. */
  activeFieldName() {
    const focused = this.fieldNameOf(document.activeElement);
    if (focused) {
      return focused;
    }
    return this.lastFocusedName && this.isVisible(this.lastFocusedName) ? this.lastFocusedName : null;
  }

  /** Moves focus into a field: its checked option, its first option or its text area. */
  focusField(name) {
    const control = this.controls.get(name);
    if (!control || !this.isVisible(name)) {
      return false;
    }
    const { field, inputs } = control;
    let target = inputs[0];
    if (field.kind === 'multi-choice') {
      target = inputs.find((input) => input.tabIndex === 0) ?? inputs[0];
    } else if (field.kind !== 'text') {
      target = inputs.find((input) => input.checked) ?? inputs[0];
    }
    if (!target) {
      return false;
    }
    target.focus();
    return true;
  }

  /**
   * Focuses the visible field `step` places after (or, when negative, before) `name`.
   * Returns false when there is none.
   */
  focusRelative(name, step) {
    const names = this.visibleNames();
    const target = names[names.indexOf(name) + step];
    return target ? this.focusField(target) : false;
  }

  /** The first visible field without an answer, or null. */
  firstOpenName() {
    return this.visibleNames().find((name) => !isAnswered(this.answerOf(name))) ?? null;
  }

  /** Focuses the first visible field without an answer, else the first visible field. */
  focusFirstOpen() {
    return this.focusField(this.firstOpenName() ?? this.visibleNames()[0]);
  }

  /** Moves focus between the options of a multi-choice field (Left and Right keys). */
  moveWithinGroup(node, step) {
    const name = this.fieldNameOf(node);
    const control = name ? this.controls.get(name) : null;
    if (!control || control.field.kind !== 'multi-choice') {
      return false;
    }
    const index = control.inputs.indexOf(node);
    const target = control.inputs[index + step];
    if (target) {
      target.focus();
    }
    return true;
  }

  /** Gives a multi-choice field a single Tab stop: the option focused last. */
  makeTabStop(control, input) {
    if (!control.inputs.includes(input)) {
      return;
    }
    for (const other of control.inputs) {
      other.tabIndex = other === input ? 0 : -1;
    }
  }

  answerChanged(name) {
    this.clearError(name);
    this.updateVisibility();
    this.onAnswer(name);
  }

  /** Shows the fields whose condition holds and hides, and clears, the others. */
  updateVisibility() {
    for (const control of this.controls.values()) {
      const { field, root, inputs } = control;
      const condition = field.condition;
      const visible = !condition || (this.isVisible(condition.field) && conditionHolds(condition, this.answerOf(condition.field)));
      if (visible) {
        root.hidden = false;
        continue;
      }
      root.hidden = true;
      this.clearError(field.name);
      for (const input of inputs) {
        if (input.tagName === 'TEXTAREA') {
          input.value = '';
        } else {
          input.checked = false;
        }
      }
    }
  }
}
