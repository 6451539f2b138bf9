// Keyboard shortcuts of the grading page and the list the help panel shows.
//
// Option keys are the digits 1 to 9, so no other shortcut uses a digit. The 0 key does
// nothing, so a grader who types 0 meaning "DR severity 0" changes nothing by mistake.

/** Keys and what they do, in the order the help panel lists them. */
export const SHORTCUTS = [
  ['1 … 9', 'Choose that option of the focused field (the first unanswered field when none has focus). On a multi-choice field, tick or untick it.'],
  ['Tab, Shift+Tab, ↓, ↑', 'Go to the next or previous field.'],
  ['← →', 'Go to the previous or next option of the focused field.'],
  ['Enter', 'Submit the grade and load the next image.'],
  ['Ctrl+Enter', 'Submit from anywhere, including the comment box.'],
  ['U', 'Mark the image ungradable.'],
  ['D', 'Show or hide the option definitions of the focused field.'],
  ['+ or =, −', 'Zoom in, zoom out. The mouse wheel zooms too, and dragging pans.'],
  ['[ ]', 'Lower or raise the brightness.'],
  ['{ }', 'Lower or raise the contrast.'],
  ['R', 'Reset zoom, pan, brightness and contrast.'],
  ['F', 'Load the full-resolution image.'],
  ['?', 'Show or hide this list.'],
  ['Esc', 'Close a panel, or leave the comment box so that shortcuts work again.'],
];

const TEXT_INPUT_TYPES = new Set(['text', 'search', 'email', 'number', 'password', 'tel', 'url', 'date', 'time']);

/** True when keys typed into `node` are text, which shortcuts must leave alone. */
function isTextEntry(node) {
  if (!(node instanceof Element)) {
    return false;
  }
  if (node.isContentEditable || node.tagName === 'TEXTAREA' || node.tagName === 'SELECT') {
    return true;
  }
  return node.tagName === 'INPUT' && TEXT_INPUT_TYPES.has(node.type);
}

/** True for elements whose own Enter key action (click, follow) must be kept. */
function activatesOnEnter(node) {
  return node instanceof Element && Boolean(node.closest('button, a[href], summary'));
}

/**
 * Listens for the page's shortcuts on the document and calls the matching action.
 *
 * @param {object} actions callbacks: `submit`, `pickDigit(index)`, `moveField(step)` (returns
 *   true when it moved focus), `moveOption(step)` (same), `markUngradable`, `toggleDefinitions`,
 *   `toggleHelp`, `closePanels` (returns true when it closed one), `zoom(factor)`,
 *   `brightness(step)`, `contrast(step)`, `resetView`, `loadOriginal`
 */
export function installShortcuts(actions) {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.isComposing) {
      return;
    }
    const target = event.target;

    if (event.key === 'Escape') {
      if (actions.closePanels()) {
        event.preventDefault();
      } else if (isTextEntry(target)) {
        target.blur();
        event.preventDefault();
      }
      return;
    }
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      actions.submit();
      return;
    }
    if (isTextEntry(target) || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }

    const handled = handleKey(event, target, actions);
    if (handled) {
      event.preventDefault();
    }
  });
}

/** Runs the action of one key; returns true when the key was used. */
function handleKey(event, target, actions) {
  const key = event.key;
  if (/^[1-9]$/.test(key)) {
    actions.pickDigit(Number(key) - 1);
    return true;
  }
  switch (key) {
    case 'Enter':
      if (activatesOnEnter(target)) {
        return false;
      }
      actions.submit();
      return true;
    case 'ArrowDown':
      return actions.moveField(1);
    case 'ArrowUp':
      return actions.moveField(-1);
    case 'ArrowRight':
      return actions.moveOption(1);
    case 'ArrowLeft':
      return actions.moveOption(-1);
    case 'u':
    case 'U':
      actions.markUngradable();
      return true;
    case 'd':
    case 'D':
      actions.toggleDefinitions();
      return true;
    case '?':
      actions.toggleHelp();
      return true;
    case '+':
    case '=':
      actions.zoom(1);
      return true;
    case '-':
    case '_':
      actions.zoom(-1);
      return true;
    case '[':
      actions.brightness(-1);
      return true;
    case ']':
      actions.brightness(1);
      return true;
    case '{':
      actions.contrast(-1);
      return true;
    case '}':
      actions.contrast(1);
      return true;
    case 'r':
    case 'R':
      actions.resetView();
      return true;
    case 'f':
    case 'F':
      actions.loadOriginal();
      return true;
    default:
      return false;
  }
}
