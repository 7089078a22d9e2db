// The portal's shell: routes /ui/... URLs to pages in the browser (the gateway answers every
// such path with index.html), keeps the navigation current and moves focus to each new page.

import { info } from './api.js';
import { h, replace, empty } from './dom.js';
import { sampler } from './metrics.js';
import * as functionsPage from './pages/functions.js';
import * as functionPage from './pages/function.js';
import * as deployPage from './pages/deploy.js';
import * as asyncPage from './pages/async.js';

const main = document.getElementById('main');
let cleanup = null;

function notFound(root) {
  replace(root, empty({ icon: '?', title: 'No such page', text: `Nothing lives at ${location.pathname}.`, action: h('a', { class: 'btn', href: '/ui/' }, 'Back to functions') }));
  return { title: 'Not found' };
}

/** The page for the current URL and its parameters. */
function route() {
  const path = location.pathname.replace(/\/+$/, '');
  const query = new URLSearchParams(location.search);
  if (path === '/ui' || path === '' || path === '/ui/index.html') return { page: functionsPage, nav: 'functions', params: { query } };
  const fn = /^\/ui\/functions\/([^/]+)$/.exec(path);
  if (fn) return { page: functionPage, nav: 'functions', params: { name: decodeURIComponent(fn[1]), namespace: query.get('namespace') || '', query } };
  if (path === '/ui/deploy') return { page: deployPage, nav: 'deploy', params: { query } };
  if (path === '/ui/async') return { page: asyncPage, nav: 'async', params: { query } };
  return { page: { render: notFound }, nav: '', params: {} };
}

function render({ focus }) {
  if (cleanup) cleanup();
  cleanup = null;
  const { page, nav, params } = route();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  const shown = page.render(main, params) || {};
  cleanup = shown.cleanup || null;
  document.title = shown.title ? `${shown.title} · ironfaas` : 'ironfaas';
  if (focus) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

/** Goes to a portal URL without reloading the page. */
export function navigate(url, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render({ focus: true });
}

document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  if (a.classList.contains('skip-link')) {
    event.preventDefault();
    main.focus();
    return;
  }
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui')) return;
  if (/\.[a-z0-9]+$/i.test(url.pathname)) return;
  event.preventDefault();
  if (url.pathname + url.search === location.pathname + location.search) return;
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render({ focus: true }));

async function showInfo() {
  const box = document.getElementById('gateway-info');
  try {
    const i = await info();
    const provider = i.provider && i.provider.provider ? ` · ${i.provider.provider}` : '';
    replace(box, `v${(i.version && i.version.release) || '?'}${provider}`);
    box.title = `ironfaas ${i.version && i.version.release}, provider ${i.provider && i.provider.provider} (${i.provider && i.provider.orchestration}), ${i.arch}`;
  } catch (e) {
    replace(box, e.status === 401 ? 'not signed in' : '');
  }
}

sampler.start();
showInfo();
render({ focus: false });
