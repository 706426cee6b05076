// The dashboard's only script: live refresh over /live, confirmations, and
// logs that follow. No framework, nothing fetched from elsewhere.
(function () {
  'use strict';
  var live = document.getElementById('live');
  var main = document.getElementById('main');

  function say(text, kind) {
    live.textContent = text;
    live.className = 'live' + (kind ? ' ' + kind : '');
  }

  document.addEventListener('submit', function (e) {
    var question = e.target.getAttribute('data-confirm');
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });

  var log = document.getElementById('log');
  var busy = false;
  var again = false;

  function refresh() {
    if (log) { return; } // the logs view follows its own stream
    if (busy) { again = true; return; }
    var typing = document.activeElement;
    if (typing && main.contains(typing) && typing.tagName === 'INPUT') {
      again = true; // not while someone types; on blur
      return;
    }
    busy = true;
    var sep = location.search ? '&' : '?';
    fetch(location.pathname + location.search + sep + 'fragment=1', {
      credentials: 'same-origin', headers: { 'Accept': 'text/html' }
    }).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.text();
    }).then(function (html) {
      main.innerHTML = html;
      document.body.setAttribute('data-refreshed', String(Date.now()));
    }).catch(function (err) {
      say('Could not refresh this view (' + err.message + '); retrying on the next change.', 'bad');
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  main.addEventListener('focusout', function () { if (again) { again = false; refresh(); } });

  var delay = 500;
  var lost = false;
  function connect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/live');
    ws.onopen = function () {
      delay = 500;
      if (lost) { lost = false; say('Reconnected: the view is live again.', 'ok'); refresh(); }
    };
    ws.onmessage = function (m) {
      var d;
      try { d = JSON.parse(m.data); } catch (err) { return; }
      if (d.type === 'changed') {
        refresh();
      } else if (d.type === 'upstream') {
        if (!d.connected) {
          say('The daemon\u2019s event stream is not connected: retrying. What you see may be out of date.', 'warn');
        } else if (live.className.indexOf('warn') >= 0) {
          say('Connected to the daemon again.', 'ok');
        }
      }
    };
    ws.onclose = function () {
      lost = true;
      say('Live updates lost: reconnecting\u2026', 'warn');
      // A `ui dashboard` that was stopped and started again has a new token:
      // this page can never reconnect, and says what to do instead.
      fetch(location.pathname + '?fragment=1', { credentials: 'same-origin' }).then(function (r) {
        if (r.status === 401) {
          say('This dashboard was stopped or restarted: open the address `ui dashboard` printed (each run makes a new one).', 'bad');
          return;
        }
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 5000);
      }, function () {
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 5000);
      });
    };
  }
  connect();

  if (log && log.getAttribute('data-stream')) {
    var stream = new EventSource(log.getAttribute('data-stream'));
    stream.onopen = function () { log.textContent = ''; };
    stream.onmessage = function (m) {
      var e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      var li = document.createElement('li');
      if (e.error) {
        li.className = 'err';
        li.textContent = e.error;
      } else {
        li.textContent = e.line;
        li.title = e.timestamp + ' ' + e.stream;
        if (e.stream === 'stderr') { li.className = 'stderr'; }
      }
      var atEnd = window.innerHeight + window.scrollY >= document.body.offsetHeight - 40;
      log.appendChild(li);
      while (log.children.length > 2000) { log.removeChild(log.firstChild); }
      if (atEnd) { li.scrollIntoView({ block: 'end' }); }
    };
    stream.onerror = function () { say('The log stream was interrupted: reconnecting\u2026', 'warn'); };
  }
})();
