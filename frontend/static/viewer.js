// Image viewer of the grading page: zoom around the pointer, pan by dragging, brightness and
// contrast as CSS filters, and the original file on request. The image is laid out at the
// size that fits the stage, and zoom and pan are one CSS transform on top of that.

const MIN_ZOOM = 0.5;
const MAX_ZOOM = 16;
/** Zoom factor of one key press or button click. */
export const ZOOM_STEP = 1.25;
/** Pixels of the image that stay inside the stage however far it is dragged. */
const VISIBLE_MARGIN_PX = 48;
/** Brightness and contrast step of one key press, in percent. */
export const FILTER_STEP = 10;

/**
 * Loads and decodes an image off-screen, so that showing it afterwards is instant.
 * Rejects when the URL cannot be fetched or decoded.
 */
export function preloadImage(url) {
  const image = new Image();
  image.decoding = 'async';
  image.src = url;
  return image.decode().then(
    () => image,
    () => {
      throw new Error(`The image ${url} could not be loaded or decoded.`);
    },
  );
}

function clamp(value, min, max) {
  return Math.min(max, Math.max(min, value));
}

export class ImageViewer {
  /**
   * @param {object} elements the stage (the element the image is drawn in), the zoom
   *   read-out, the brightness and contrast range inputs, the full-resolution button and a
   *   message line.
   */
  constructor({ stage, zoomOutput, brightnessInput, contrastInput, originalButton, message }) {
    this.stage = stage;
    this.zoomOutput = zoomOutput;
    this.brightnessInput = brightnessInput;
    this.contrastInput = contrastInput;
    this.originalButton = originalButton;
    this.message = message;

    this.image = null;
    this.originalUrl = null;
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.fitWidth = 0;
    this.fitHeight = 0;
    this.brightness = Number(brightnessInput.value);
    this.contrast = Number(contrastInput.value);
    this.drag = null;

    this.installPointerHandlers();
    brightnessInput.addEventListener('input', () => this.setFilters(Number(brightnessInput.value), this.contrast));
    contrastInput.addEventListener('input', () => this.setFilters(this.brightness, Number(contrastInput.value)));
    originalButton.addEventListener('click', () => this.loadOriginal());
    new ResizeObserver(() => this.fit()).observe(stage);
  }

  /** Shows a decoded image and fits it to the stage. Brightness and contrast carry over. */
  show(image, { originalUrl = null, alt = '' } = {}) {
    image.alt = alt;
    image.draggable = false;
    image.className = 'viewer-image';
    this.stage.replaceChildren(image);
    this.image = image;
    this.originalUrl = originalUrl;
    this.originalButton.disabled = !originalUrl;
    this.originalButton.textContent = 'Full resolution';
    this.setMessage('');
    this.fit();
    this.applyFilters();
  }

  /** Removes the image and shows a line of text in its place. */
  clear(text) {
    const placeholder = document.createElement('p');
    placeholder.className = 'viewer-placeholder';
    placeholder.textContent = text;
    this.stage.replaceChildren(placeholder);
    this.image = null;
    this.originalUrl = null;
    this.originalButton.disabled = true;
    this.updateZoomOutput();
  }

  /** Lays the image out at the largest size that fits the stage, centred, at zoom 1. */
  fit() {
    if (!this.image) {
      return;
    }
    const stageWidth = this.stage.clientWidth;
    const stageHeight = this.stage.clientHeight;
    const naturalWidth = this.image.naturalWidth || 1;
    const naturalHeight = this.image.naturalHeight || 1;
    const scale = Math.min(stageWidth / naturalWidth, stageHeight / naturalHeight);
    this.fitWidth = naturalWidth * scale;
    this.fitHeight = naturalHeight * scale;
    this.image.style.width = `${this.fitWidth}px`;
    this.image.style.height = `${this.fitHeight}px`;
    this.zoom = 1;
    this.panX = (stageWidth - this.fitWidth) / 2;
    this.panY = (stageHeight - this.fitHeight) / 2;
    this.applyTransform();
  }

  /** Multiplies the zoom by `factor`, keeping the stage point (x, y) fixed (default: the centre). */
  zoomBy(factor, x = this.stage.clientWidth / 2, y = this.stage.clientHeight / 2) {
    if (!this.image) {
      return;
    }
    const zoom = clamp(this.zoom * factor, MIN_ZOOM, MAX_ZOOM);
    const applied = zoom / this.zoom;
    this.panX = x - (x - this.panX) * applied;
    this.panY = y - (y - this.panY) * applied;
    this.zoom = zoom;
    this.applyTransform();
  }

  /** Resets zoom, pan, brightness and contrast. */
  reset() {
    this.setFilters(100, 100);
    this.fit();
  }

  /** Sets brightness and contrast in percent (100 leaves the image unchanged). */
  setFilters(brightness, contrast) {
    this.brightness = clamp(brightness, Number(this.brightnessInput.min), Number(this.brightnessInput.max));
    this.contrast = clamp(contrast, Number(this.contrastInput.min), Number(this.contrastInput.max));
    this.brightnessInput.value = String(this.brightness);
    this.contrastInput.value = String(this.contrast);
    this.applyFilters();
  }

  /** Replaces the displayed image by the original file, keeping zoom and pan. */
  async loadOriginal() {
    if (!this.image || !this.originalUrl || this.image.dataset.original === 'true') {
      return;
    }
    const shown = this.image;
    const url = this.originalUrl;
    this.originalButton.disabled = true;
    this.originalButton.textContent = 'Loading full resolution…';
    let original;
    try {
      original = await preloadImage(url);
    } catch {
      if (this.image === shown) {
        this.originalButton.textContent = 'Full resolution';
        this.setMessage('This browser cannot display the original file.', url);
      }
      return;
    }
    if (this.image !== shown) {
      return;
    }
    original.alt = shown.alt;
    original.draggable = false;
    original.className = shown.className;
    original.style.cssText = shown.style.cssText;
    original.dataset.original = 'true';
    shown.replaceWith(original);
    this.image = original;
    this.originalButton.textContent = 'Full resolution shown';
  }

  setMessage(text, downloadUrl = null) {
    this.message.replaceChildren();
    this.message.hidden = !text;
    if (!text) {
      return;
    }
    this.message.append(text);
    if (downloadUrl) {
      const link = document.createElement('a');
      link.href = downloadUrl;
      link.download = '';
      link.textContent = 'Download it';
      this.message.append(' ', link, '.');
    }
  }

  applyTransform() {
    if (!this.image) {
      return;
    }
    const width = this.fitWidth * this.zoom;
    const height = this.fitHeight * this.zoom;
    const margin = Math.min(VISIBLE_MARGIN_PX, width, height);
    this.panX = clamp(this.panX, margin - width, this.stage.clientWidth - margin);
    this.panY = clamp(this.panY, margin - height, this.stage.clientHeight - margin);
    this.image.style.transform = `translate(${this.panX}px, ${this.panY}px) scale(${this.zoom})`;
    this.updateZoomOutput();
  }

  applyFilters() {
    if (this.image) {
      this.image.style.filter = `brightness(${this.brightness}%) contrast(${this.contrast}%)`;
    }
  }

  updateZoomOutput() {
    this.zoomOutput.value = this.image ? `${Math.round(this.zoom * 100)}%` : '';
  }

  /** Stage coordinates of a pointer or wheel event. */
  stagePoint(event) {
    const box = this.stage.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  installPointerHandlers() {
    this.stage.addEventListener(
      'wheel',
      (event) => {
        if (!this.image) {
          return;
        }
        event.preventDefault();
        // Line and page modes (Firefox, some mice) report far smaller deltas than pixel mode.
        const pixels = event.deltaMode === 0 ? event.deltaY : event.deltaY * 16;
        const [x, y] = this.stagePoint(event);
        this.zoomBy(Math.exp(-pixels * 0.002), x, y);
      },
      { passive: false },
    );

    // Keep the focus where it is (usually a form field) while the mouse pans, so that the
    // digit keys still choose options of that field afterwards.
    this.stage.addEventListener('mousedown', (event) => event.preventDefault());
    this.stage.addEventListener('pointerdown', (event) => {
      if (!this.image || event.button !== 0) {
        return;
      }
      this.stage.setPointerCapture(event.pointerId);
      this.drag = { pointerId: event.pointerId, x: event.clientX, y: event.clientY };
      this.stage.classList.add('dragging');
    });
    this.stage.addEventListener('pointermove', (event) => {
      if (!this.drag || event.pointerId !== this.drag.pointerId) {
        return;
      }
      this.panX += event.clientX - this.drag.x;
      this.panY += event.clientY - this.drag.y;
      this.drag.x = event.clientX;
      this.drag.y = event.clientY;
      this.applyTransform();
    });
    const endDrag = (event) => {
      if (this.drag && event.pointerId === this.drag.pointerId) {
        this.drag = null;
        this.stage.classList.remove('dragging');
      }
    };
    this.stage.addEventListener('pointerup', endDrag);
    this.stage.addEventListener('pointercancel', endDrag);

    this.stage.addEventListener('dblclick', (event) => {
      const [x, y] = this.stagePoint(event);
      this.zoomBy(2, x, y);
    });
  }
}
