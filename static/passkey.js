// connect's passkeys: the WebAuthn ceremonies of the login page, the account page and the
// confirmation of a sensitive change. A first-party file (CSP `script-src 'self'`), and the
// only script of connect: every page works without it, only passkeys need it.
//
// A form marked `data-passkey="login"` or `"register"` names the endpoint that starts a
// ceremony in `data-options`. On submit, this script fetches the options (the form's `csrf`
// and `flow`, `name` and `next` fields, as the server reads them), lets the browser ask the
// authenticator, writes the ceremony id and the credential (JSON) into the form's hidden
// fields and submits the form as any other: the server answers with a page, as without
// script. When anything fails before that, the form is submitted without a credential and
// the server's page says why; only a ceremony the person cancelled stays on the page, with
// the `data-message="cancelled"` text beside the form shown. The passkey parts of a page are
// hidden (`data-passkey-section`) until this script finds that the browser can use passkeys;
// where it cannot, `data-passkey-unsupported` texts are shown. Every word comes from the page.
'use strict';

(() => {
  const supported = typeof window.PublicKeyCredential === 'function'
    && navigator.credentials !== undefined;

  const decode = (text) => {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const raw = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  };
  const encode = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let raw = '';
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: decode(c.id) }));

  /** The creation options of the server (JSON, base64url) as the browser takes them. */
  const creationOptions = (o) => ({
    ...o,
    challenge: decode(o.challenge),
    user: { ...o.user, id: decode(o.user.id) },
    excludeCredentials: withIds(o.excludeCredentials),
  });
  const requestOptions = (o) => ({
    ...o,
    challenge: decode(o.challenge),
    allowCredentials: withIds(o.allowCredentials),
  });

  const registration = (c) => ({
    id: c.id,
    rawId: encode(c.rawId),
    type: c.type,
    response: {
      attestationObject: encode(c.response.attestationObject),
      clientDataJSON: encode(c.response.clientDataJSON),
      transports: typeof c.response.getTransports === 'function' ? c.response.getTransports() : undefined,
    },
    extensions: c.getClientExtensionResults(),
  });
  const assertion = (c) => ({
    id: c.id,
    rawId: encode(c.rawId),
    type: c.type,
    response: {
      authenticatorData: encode(c.response.authenticatorData),
      clientDataJSON: encode(c.response.clientDataJSON),
      signature: encode(c.response.signature),
      userHandle: c.response.userHandle ? encode(c.response.userHandle) : null,
    },
    extensions: c.getClientExtensionResults(),
  });

  /** Starts a ceremony at the form's `data-options` endpoint: `{ ceremony, publicKey }`. */
  const startCeremony = async (form) => {
    const body = new URLSearchParams();
    for (const field of ['csrf', 'flow', 'name', 'next']) {
      const input = form.elements.namedItem(field);
      if (input && 'value' in input) body.set(field, input.value);
    }
    const res = await fetch(form.dataset.options, {
      method: 'POST',
      body,
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`options: ${res.status}`);
    return res.json();
  };

  const show = (form, which) => {
    for (const p of form.parentElement.querySelectorAll('[data-message]')) {
      p.hidden = p.dataset.message !== which;
    }
  };

  /** Puts the ceremony's outcome into the form and submits it to the server. */
  const send = (form, ceremony, credential) => {
    form.elements.namedItem('ceremony').value = ceremony;
    form.elements.namedItem('credential').value = JSON.stringify(credential);
    form.dataset.sent = 'true';
    form.submit();
  };

  // A passkey offered in the e-mail field's suggestions (conditional mediation) runs until
  // the person picks one or presses the button, which aborts it.
  let pending = null;

  const ceremonies = {
    async login(form, signal, mediation) {
      const started = await startCeremony(form);
      const options = { publicKey: requestOptions(started.publicKey), signal };
      if (mediation) options.mediation = mediation;
      const credential = await navigator.credentials.get(options);
      return [started.ceremony, assertion(credential)];
    },
    async register(form, signal) {
      const started = await startCeremony(form);
      const credential = await navigator.credentials.create({
        publicKey: creationOptions(started.publicKey),
        signal,
      });
      return [started.ceremony, registration(credential)];
    },
  };

  const run = async (form) => {
    if (pending) pending.abort();
    const controller = new AbortController();
    pending = controller;
    show(form, '');
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    try {
      const [ceremony, credential] = await ceremonies[form.dataset.passkey](form, controller.signal);
      send(form, ceremony, credential);
    } catch (e) {
      if (button) button.disabled = false;
      // The person closed the browser's dialog (or it timed out): they may try again.
      if (e && (e.name === 'NotAllowedError' || e.name === 'AbortError')) {
        show(form, 'cancelled');
        return;
      }
      // Anything else (no options, an authenticator error): the server's page says why.
      form.submit();
    }
  };

  const conditional = async (form) => {
    const field = document.querySelector('input[autocomplete~="webauthn"]');
    if (!field || typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const controller = new AbortController();
    pending = controller;
    try {
      const [ceremony, credential] = await ceremonies.login(form, controller.signal, 'conditional');
      send(form, ceremony, credential);
    } catch {
      // Aborted by the button, or nothing picked: the button and the password stay.
    }
  };

  if (!supported) {
    for (const note of document.querySelectorAll('[data-passkey-unsupported]')) note.hidden = false;
    return;
  }
  for (const form of document.querySelectorAll('form[data-passkey]')) {
    const section = form.closest('[data-passkey-section]');
    if (section) section.hidden = false;
    form.addEventListener('submit', (event) => {
      if (form.dataset.sent === 'true') return;
      event.preventDefault();
      run(form);
    });
    if (form.dataset.passkey === 'login' && form.dataset.conditional === 'true') {
      conditional(form);
    }
  }
})();
