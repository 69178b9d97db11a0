/*
 * tally.js: counts this page with tallyd and fills every [data-tally]
 * element with its number. Options on the <script> tag: data-site,
 * data-path, data-locale, data-count="false", data-spa="true".
 * No cookies, no storage; on any failure the page keeps its text.
 */
(function () {
	'use strict';
	var me = document.currentScript, all, i;

	if (!me) {
		all = document.getElementsByTagName('script');
		for (i = all.length - 1; i >= 0 && !me; i--)
			if (/\/tally\.js([?#]|$)/.test(all[i].src))
				me = all[i];
	}
	if (!me || !window.fetch)
		return;

	var opt = me.dataset;
	var base = me.src.replace(/\/tally\.js([?#].*)?$/, '');
	var lang = opt.locale || document.documentElement.lang || undefined;
	var referrer = document.referrer;
	var counted;

	function format(n) {
		try {
			return new Intl.NumberFormat(lang).format(n);
		} catch (e) {
			// An unknown locale: the browser's own, else digits.
			try {
				return new Intl.NumberFormat().format(n);
			} catch (e2) {
				return String(n);
			}
		}
	}

	// data-tally="page-today-visitors" is counts.page_today.visitors.
	function fill(counts) {
		var els = document.querySelectorAll('[data-tally]'), j, m, o;

		for (j = 0; j < els.length; j++) {
			m = /^(today|total|page|page-today)(-visitors)?$/
			    .exec(els[j].getAttribute('data-tally'));
			o = m && counts[m[1].replace('-', '_')];
			o = o && o[m[2] ? 'visitors' : 'views'];
			if (typeof o === 'number')
				els[j].textContent = format(o);
		}
	}

	function run() {
		var path = opt.path || location.pathname;
		var init = { mode: 'cors', credentials: 'omit' };
		var body = { path: path, referrer: referrer }, url;

		counted = location.pathname;
		referrer = location.href;
		if (opt.count === 'false') {
			url = base + '/count?path=' + encodeURIComponent(path) +
			    (opt.site ? '&site=' + encodeURIComponent(opt.site) : '');
		} else {
			if (opt.site)
				body.site = opt.site;
			url = base + '/hit';
			init.method = 'POST';
			init.keepalive = true;
			// text/plain is a "simple" type: no preflight request.
			init.headers = { 'Content-Type': 'text/plain' };
			init.body = JSON.stringify(body);
		}
		fetch(url, init).then(function (r) {
			return r.ok ? r.json() : null;
		}).then(function (counts) {
			if (!counts)
				return;
			// An async script may run before the elements are parsed.
			if (document.readyState === 'loading')
				document.addEventListener('DOMContentLoaded',
				    function () { fill(counts); });
			else
				fill(counts);
		})['catch'](function () {});
	}

	if (opt.spa === 'true') {
		var push = history.pushState;
		var moved = function () {
			// A new query or #fragment is the same page.
			if (location.pathname !== counted)
				run();
		};
		history.pushState = function () {
			var r = push.apply(this, arguments);
			moved();
			return r;
		};
		window.addEventListener('popstate', moved);
	}
	run();
})();
