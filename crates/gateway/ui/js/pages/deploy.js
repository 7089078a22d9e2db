// Deploy from the function store: pick a stored image, name the function, set its
// environment, labels and scaling bounds, and deploy it (or replace the one of that name).

import { deployFunction, listFunctions, listStore, updateFunction } from '../api.js';
import { h, replace, empty, errorBox, fmtBytes, functionHref, loading, parsePairs, shortDigest, toast } from '../dom.js';
import { navigate } from '../app.js';

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A function name suggested by an image reference: "team/resize:1.2" -> "resize". */
export function nameFromImage(image) {
  const last = image.split('/').pop() || image;
  const bare = last.split('@')[0].split(':')[0];
  return bare.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
}

/** Renders the deploy page into root. */
export function render(root, { query }) {
  let images = null;
  let selected = null;
  let busy = false;

  const storeBody = h('div', {}, loading('Reading the function store…'));
  const name = h('input', { type: 'text', id: 'deploy-name', name: 'name', required: true, autocomplete: 'off', spellcheck: 'false', maxlength: '63', 'aria-describedby': 'deploy-name-help' });
  const namespace = h('input', { type: 'text', id: 'deploy-namespace', name: 'namespace', autocomplete: 'off', spellcheck: 'false', placeholder: 'openfaas-fn' });
  const env = h('textarea', { id: 'deploy-env', name: 'env', rows: '3', placeholder: 'LOG_LEVEL=debug', spellcheck: 'false', 'aria-describedby': 'deploy-env-help' });
  const labels = h('textarea', { id: 'deploy-labels', name: 'labels', rows: '2', placeholder: 'team=payments', spellcheck: 'false', 'aria-describedby': 'deploy-labels-help' });
  const min = h('input', { type: 'number', id: 'deploy-min', name: 'min', min: '0', step: '1', value: '1', inputmode: 'numeric' });
  const max = h('input', { type: 'number', id: 'deploy-max', name: 'max', min: '1', step: '1', placeholder: 'no limit', inputmode: 'numeric' });
  const chosen = h('div', { class: 'mono', id: 'deploy-image' }, h('span', { class: 'text-muted' }, 'Pick an image from the store'));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', disabled: true }, 'Deploy');
  const outcome = h('div', { 'aria-live': 'polite' });

  const field = (id, text, input, help) => h('div', { class: 'field' }, h('label', { for: id }, text), input, help ? h('span', { class: 'help', id: `${id}-help` }, help) : null);

  const form = h(
    'form',
    { id: 'deploy-form', novalidate: true },
    h('div', { class: 'fields' },
      h('div', { class: 'field' }, h('span', { class: 'field-label' }, 'Image'), chosen),
      h('div', { class: 'fields-2' },
        field('deploy-name', 'Function name', name, 'Lower-case letters, digits and dashes'),
        field('deploy-namespace', 'Namespace', namespace)),
      field('deploy-env', 'Environment', env, 'One KEY=value per line'),
      field('deploy-labels', 'Labels', labels, 'One key=value per line'),
      h('div', { class: 'fields-2' },
        field('deploy-min', 'Min replicas', min, 'com.openfaas.scale.min; 0 scales to zero when idle'),
        field('deploy-max', 'Max replicas', max, 'com.openfaas.scale.max'))),
    h('div', { class: 'form-actions' }, submit, h('span', { class: 'updated' }, 'The gateway answers once the replicas are ready')),
    outcome,
  );

  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Deploy a function'), h('div', { class: 'sub' }, 'Run a bundle from the function store as a new function.'))),
    h(
      'div',
      { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'store-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'store-title' }, 'Function store'), h('span', { class: 'hint' }, 'Bundles pushed with ironfaas push or up')), h('div', { class: 'card-body flush' }, storeBody)),
      h('section', { class: 'card', 'aria-labelledby': 'deploy-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'deploy-title' }, 'New function')), h('div', { class: 'card-body' }, form)),
    ),
  );

  function choose(image) {
    selected = image;
    replace(chosen, image.image, h('span', { class: 'secondary text-muted' }, ` · ${shortDigest(image.digest)}`));
    if (!name.value || name.dataset.suggested === name.value) {
      name.value = nameFromImage(image.image);
      name.dataset.suggested = name.value;
    }
    submit.disabled = busy;
    for (const radio of storeBody.querySelectorAll('input[type=radio]')) radio.checked = radio.value === image.image;
    for (const tr of storeBody.querySelectorAll('tr[data-image]')) tr.classList.toggle('selected', tr.dataset.image === image.image);
  }

  function drawStore(deployed) {
    if (!images.length) {
      replace(storeBody, empty({ icon: '⇪', title: 'The store is empty', text: 'Push a bundle first: "ironfaas push" (or "ironfaas up") builds a function and stores it here.' }));
      return;
    }
    const usedBy = new Map();
    for (const fn of deployed) {
      if (!fn.digest) continue;
      usedBy.set(fn.digest, [...(usedBy.get(fn.digest) || []), fn.name]);
    }
    replace(
      storeBody,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'responsive', id: 'store-table' },
          h('caption', { class: 'visually-hidden' }, 'Stored images; pick one to deploy'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Image'), h('th', { scope: 'col', class: 'num' }, 'Size'), h('th', { scope: 'col' }, 'Deployed as'))),
          h(
            'tbody',
            {},
            images.map((image, i) => {
              const radio = h('input', { type: 'radio', name: 'image', value: image.image, id: `image-${i}` });
              radio.addEventListener('change', () => choose(image));
              const tr = h(
                'tr',
                { class: 'selectable', dataset: { image: image.image } },
                h('td', { class: 'primary', 'data-label': 'Image' }, h('label', { for: `image-${i}`, class: 'image-pick' }, radio, h('span', {}, h('span', { class: 'mono' }, image.image), h('span', { class: 'secondary mono', title: image.digest }, shortDigest(image.digest))))),
                h('td', { class: 'num', 'data-label': 'Size' }, fmtBytes(image.size)),
                h('td', { 'data-label': 'Deployed as' }, (usedBy.get(image.digest) || []).length ? (usedBy.get(image.digest) || []).map((n, j) => [j ? ', ' : '', h('a', { href: functionHref(n) }, n)]) : h('span', { class: 'text-muted' }, '—')),
              );
              tr.addEventListener('click', (e) => {
                if (e.target.closest('a, input, label')) return;
                choose(image);
              });
              return tr;
            }),
          ),
        ),
      ),
    );
    const wanted = query.get('image');
    const pick = images.find((i) => i.image === wanted);
    if (pick) choose(pick);
  }

  async function loadStore() {
    try {
      const [list, deployed] = await Promise.all([listStore(), listFunctions().catch(() => [])]);
      images = list.sort((a, b) => a.image.localeCompare(b.image));
      drawStore(deployed);
    } catch (e) {
      if (e.status === 501) replace(storeBody, empty({ icon: '!', title: 'No function store', text: e.message }));
      else replace(storeBody, h('div', { class: 'card-body' }, errorBox(e)));
    }
  }

  /** The FunctionDeployment the form describes; throws with what to fix. */
  function deployment() {
    if (!selected) throw new Error('pick an image from the store first');
    const service = name.value.trim();
    if (!NAME.test(service) || service.length > 63) {
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      throw new Error(`"${service}" is not a valid function name: use lower-case letters, digits and dashes, starting and ending with a letter or digit`);
    }
    name.removeAttribute('aria-invalid');
    const envVars = parsePairs(env.value, '=', 'Environment');
    const labelMap = parsePairs(labels.value, '=', 'Labels');
    const lo = min.value.trim();
    const hi = max.value.trim();
    if (lo !== '' && !(Number.isInteger(Number(lo)) && Number(lo) >= 0)) throw new Error('min replicas must be a whole number ≥ 0');
    if (hi !== '' && !(Number.isInteger(Number(hi)) && Number(hi) >= 1)) throw new Error('max replicas must be a whole number ≥ 1');
    if (lo !== '' && hi !== '' && Number(lo) > Number(hi)) throw new Error('min replicas is more than max replicas');
    if (lo !== '') labelMap['com.openfaas.scale.min'] = String(Number(lo));
    if (hi !== '') labelMap['com.openfaas.scale.max'] = String(Number(hi));
    if (lo === '0') labelMap['com.openfaas.scale.zero'] = 'true';
    const d = { service, image: selected.image };
    if (namespace.value.trim()) d.namespace = namespace.value.trim();
    if (Object.keys(envVars).length) d.envVars = envVars;
    if (Object.keys(labelMap).length) d.labels = labelMap;
    return d;
  }

  async function send(d, replaceExisting) {
    busy = true;
    submit.disabled = true;
    replace(outcome, h('div', { class: 'result' }, loading(`${replaceExisting ? 'Updating' : 'Deploying'} ${d.service}… waiting for its replicas to be ready`)));
    try {
      await (replaceExisting ? updateFunction(d) : deployFunction(d));
      toast(`${d.service} is ${replaceExisting ? 'updated' : 'deployed'} and ready`);
      navigate(functionHref(d.service, d.namespace));
    } catch (e) {
      const again = e.status === 409 && !replaceExisting ? h('button', { type: 'button', class: 'btn btn-small', id: 'deploy-replace', onclick: () => send(d, true) }, `Replace ${d.service} with this image`) : null;
      replace(outcome, h('div', { class: 'alert alert-error result', role: 'alert', id: 'deploy-error' }, h('strong', {}, e.status === 409 ? `${d.service} already exists` : 'Deploy failed'), h('pre', {}, e.message), again));
    } finally {
      busy = false;
      submit.disabled = !selected;
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (busy) return;
    let d;
    try {
      d = deployment();
    } catch (err) {
      replace(outcome, h('div', { class: 'alert alert-error result', role: 'alert', id: 'deploy-error' }, err.message));
      return;
    }
    send(d, false);
  });

  loadStore();
  return { title: 'Deploy' };
}
