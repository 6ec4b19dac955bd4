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
 * elements were masked, the title and text, and, for a full-page shot, the document's size.
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

  const css = (el, props) => { for (const k in props) el.style.setProperty(k, props[k], 'important'); };
  if (unique.length > 0) {
    const pane = document.createElement('div');
    css(pane, { position: 'absolute', inset: 'auto', left: '0px', top: '0px', width: '0px', height: '0px', 'min-width': '0px', 'min-height': '0px', 'max-width': 'none', 'max-height': 'none', margin: '0px', padding: '0px', border: '0px none', overflow: 'visible', background: 'transparent', opacity: '1', transform: 'none', filter: 'none', display: 'block', visibility: 'visible', 'pointer-events': 'none', 'z-index': '2147483647' });
    const sx = window.scrollX, sy = window.scrollY;
    for (const el of unique) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0) {
        const box = document.createElement('div');
        css(box, { position: 'absolute', left: (r.left + sx) + 'px', top: (r.top + sy) + 'px', width: r.width + 'px', height: r.height + 'px', margin: '0px', padding: '0px', border: '0px none', background: '#000000', opacity: '1', display: 'block', visibility: 'visible' });
        pane.appendChild(box);
      }
      if (el.style) el.style.setProperty('visibility', 'hidden', 'important');
    }
    pane.setAttribute('popover', 'manual');
    document.documentElement.appendChild(pane);
    if (typeof pane.showPopover === 'function') pane.showPopover();
  }
  const out = { masked: elements.length, title, text, width: 0, height: 0 };
  if (!fullPage) return out;
  const b = document.body, d = document.documentElement;
  out.width = Math.max(b ? b.scrollWidth : 0, d.scrollWidth, b ? b.offsetWidth : 0, d.offsetWidth, b ? b.clientWidth : 0, d.clientWidth);
  out.height = Math.max(b ? b.scrollHeight : 0, d.scrollHeight, b ? b.offsetHeight : 0, d.offsetHeight, b ? b.clientHeight : 0, d.clientHeight);
  return out;
}`;
