/**
 * Code that runs in the captured page, as strings: this package is compiled without the DOM
 * types. Each script is one round trip to the renderer, which on a loaded two-core machine costs
 * more than the work inside it, so everything the page must do before its pixels are taken is one
 * script.
 */

/** The document and every open shadow root in it, so a masked element inside a web component is found too. */
const ROOTS = `(() => {
  const roots = [];
  const collect = (root) => {
    roots.push(root);
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
    for (let n = walker.nextNode(); n !== null; n = walker.nextNode()) if (n.shadowRoot) collect(n.shadowRoot);
  };
  collect(document);
  return roots;
})()`;

/** Where the isolated world keeps the selectors and the elements it masked, for REMEASURE. */
const KEPT = '__witnessMasked';

/**
 * Each element's box in page coordinates (CSS pixels from the document's top left), joined with
 * the box of its contents, which may overflow it; boxes of nothing drawn are left out.
 */
const RECTS = `((elements) => {
  const sx = window.scrollX, sy = window.scrollY;
  const out = [];
  for (const el of elements) {
    const r = el.getBoundingClientRect();
    let x0 = r.left, y0 = r.top, x1 = r.right, y1 = r.bottom;
    if (!(r.width > 0 && r.height > 0)) { x0 = y0 = Infinity; x1 = y1 = -Infinity; }
    const range = document.createRange();
    range.selectNodeContents(el);
    const c = range.getBoundingClientRect();
    if (c.width > 0 && c.height > 0) { x0 = Math.min(x0, c.left); y0 = Math.min(y0, c.top); x1 = Math.max(x1, c.right); y1 = Math.max(y1, c.bottom); }
    if (x1 > x0 && y1 > y0) out.push({ x: x0 + sx, y: y0 + sy, width: x1 - x0, height: y1 - y0 });
  }
  return out;
})`;

/**
 * Before the pixels: wait for web fonts (text drawn in a fallback font is not what a person saw),
 * settle animations (finite ones to their end, endless ones to their start) so the shot does not
 * depend on timing, and hide carets. Then read the title and the visible text as the shot will
 * show them, with each masked element reading as the replacement: its text nodes (in open shadow
 * roots too) are swapped for the replacement and put back within this one task, during which the
 * page is not painted. Then mask: a masked element is hidden (visibility, which moves nothing)
 * and a solid black box is drawn over where it is, in the top layer above modal dialogs and
 * popovers, so the secret is not painted even if the element moves after the box was placed. An
 * invalid selector fails the capture rather than leave something unmasked. Returns how many
 * elements were masked, the title and text, the masked boxes in page coordinates and the part of
 * the page the screenshot will show (the viewport, or the whole document for a full-page shot).
 *
 * It runs in an isolated world (shot.ts), so the page's own changes to DOM prototypes are not
 * what it calls. The overlay is only a first layer: the page's CSS can still clip it or move the
 * element (`:has()`), so Node paints the returned boxes, and REMEASURE's, into the PNG itself.
 */
export const PREPARE = `async ({ selectors, fullPage, replacement, max }) => {
  try { await document.fonts.ready; } catch {}
  const roots = ${ROOTS};
  const animations = new Set();
  for (const root of roots) for (const a of root.getAnimations()) animations.add(a);
  for (const a of animations) {
    try {
      const end = a.effect ? a.effect.getComputedTiming().endTime : Infinity;
      if (Number.isFinite(end)) a.finish(); else a.cancel();
    } catch {}
  }
  for (const root of roots) for (const el of root.querySelectorAll('input,textarea,[contenteditable]')) el.style.setProperty('caret-color', 'transparent', 'important');
  const elements = [];
  for (const s of selectors) {
    for (const root of roots) {
      let found;
      try { found = root.querySelectorAll(s); } catch { throw new Error('the mask selector ' + JSON.stringify(s) + ' is not a valid CSS selector'); }
      for (const el of found) elements.push(el);
    }
  }
  const unique = [...new Set(elements)];

  const seen = new Set();
  const swapped = [];
  const added = [];
  const textNodes = (node, out) => {
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    for (let n = walker.currentNode; n !== null; n = walker.nextNode()) {
      if (n.nodeType === Node.TEXT_NODE) { if (!seen.has(n)) { seen.add(n); out.push(n); } }
      else if (n.shadowRoot) textNodes(n.shadowRoot, out);
    }
    return out;
  };
  for (const el of unique) {
    // An element inside another masked one is covered by the outer one's replacement.
    if (unique.some((o) => o !== el && o.contains(el))) continue;
    const nodes = textNodes(el, []);
    if (nodes.length === 0) {
      const t = document.createTextNode(replacement);
      el.appendChild(t);
      added.push(t);
    }
    nodes.forEach((n, i) => {
      swapped.push([n, n.data]);
      n.data = i === 0 ? replacement : '';
    });
  }
  let title, text;
  try {
    title = document.title;
    text = (document.body ? document.body.innerText : '').slice(0, max);
  } finally {
    for (const [n, data] of swapped) n.data = data;
    for (const t of added) t.remove();
  }

  globalThis.${KEPT} = { selectors, elements: unique };
  const rects = ${RECTS}(unique);
  const css = (el, props) => { for (const k in props) el.style.setProperty(k, props[k], 'important'); };
  if (unique.length > 0) {
    const pane = document.createElement('div');
    css(pane, { position: 'absolute', inset: 'auto', left: '0px', top: '0px', width: '0px', height: '0px', 'min-width': '0px', 'min-height': '0px', 'max-width': 'none', 'max-height': 'none', margin: '0px', padding: '0px', border: '0px none', overflow: 'visible', background: 'transparent', opacity: '1', transform: 'none', filter: 'none', display: 'block', visibility: 'visible', 'pointer-events': 'none', 'z-index': '2147483647' });
    for (const r of rects) {
      const box = document.createElement('div');
      css(box, { position: 'absolute', left: r.x + 'px', top: r.y + 'px', width: r.width + 'px', height: r.height + 'px', margin: '0px', padding: '0px', border: '0px none', background: '#000000', opacity: '1', display: 'block', visibility: 'visible' });
      pane.appendChild(box);
    }
    for (const el of unique) if (el.style) el.style.setProperty('visibility', 'hidden', 'important');
    pane.setAttribute('popover', 'manual');
    document.documentElement.appendChild(pane);
    if (typeof pane.showPopover === 'function') pane.showPopover();
  }
  const out = { masked: elements.length, title, text, rects, area: null };
  if (!fullPage) {
    const v = window.visualViewport;
    out.area = v ? { x: v.pageLeft, y: v.pageTop, width: v.width, height: v.height } : { x: window.scrollX, y: window.scrollY, width: window.innerWidth, height: window.innerHeight };
    return out;
  }
  const b = document.body, d = document.documentElement;
  const width = Math.max(b ? b.scrollWidth : 0, d.scrollWidth, b ? b.offsetWidth : 0, d.offsetWidth, b ? b.clientWidth : 0, d.clientWidth);
  const height = Math.max(b ? b.scrollHeight : 0, d.scrollHeight, b ? b.offsetHeight : 0, d.offsetHeight, b ? b.clientHeight : 0, d.clientHeight);
  out.area = { x: 0, y: 0, width, height };
  return out;
}`;

/**
 * After the pixels: where the masked elements are now, and any element the selectors match now
 * (a page that re-rendered may have replaced one), for Node to paint over both where they were and
 * where they are.
 */
export const REMEASURE = `() => {
  const kept = globalThis.${KEPT};
  if (!kept) throw new Error('the masked elements were lost before the screenshot was taken');
  const roots = ${ROOTS};
  const elements = new Set(kept.elements);
  for (const s of kept.selectors) for (const root of roots) for (const el of root.querySelectorAll(s)) elements.add(el);
  return ${RECTS}([...elements]);
}`;
