/*
 * tallyctl: the admin command. It opens the store that tallyd uses,
 * directly and beside a running tallyd: LMDB lets many processes read
 * while one writes, so reading commands use read-only transactions and
 * writing commands take effect in tallyd's next answer.
 *
 * This file holds what every command needs: the global flags, the
 * configuration, opening the store, numbers and tables for humans.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "tally/buf.h"
#include "tally/day.h"
#include "tally/escape.h"
#include "tally/location.h"
#include "tally/number.h"
#include "tally/path.h"
#include "tally/render.h"

#include "ctl.h"

/* Every command once: the global usage, "help COMMAND" and "COMMAND
 * --help" are printed from here, and tallyctl(1) says the same. */
static const struct command {
	const char	*name;
	int		(*fn)(struct ctl *, int, char **);
	const char	*args;
	const char	*help;
} commands[] = {
	{ "stats",	cmd_stats,	"[--site S]",
	    "Today, yesterday, the last 7 and 30 days and the total, views and\n"
	    "visitors, with a 30-day sparkline." },
	{ "top",	cmd_top,	"[--site S] [--days N | --all] [--limit N]",
	    "The most viewed paths of the last N days (default 30), or of all\n"
	    "time; --limit rows (default 10)." },
	{ "page",	cmd_page,	"PATH [--site S]",
	    "One path's counts; --json prints the counts JSON of /count." },
	{ "history",	cmd_history,	"[--site S] [--path P] [--days N]",
	    "One row a day, with a bar, for the site or one path." },
	{ "sites",	cmd_sites,	"",
	    "The sites, with their pages and totals." },
	{ "referrers",	cmd_referrers,	"[--site S] [--days N]",
	    "The hosts of other sites that sent views in the last N days\n"
	    "(default 30), most first: the host only, search engines and\n"
	    "social sites under one name each, (other) past max_referrers." },
	{ "export",	cmd_export,	"[--site S] [--format csv|json]",
	    "Every row, to standard output: site,day,path,views,visitors." },
	{ "import",	cmd_import,
	    "FILE [--format csv|json] [--add] [--create]",
	    "Adds an export back, all or nothing. Rows of days the store\n"
	    "already counts are refused unless --add; sites the store and the\n"
	    "configuration do not know are refused unless --create." },
	{ "import-log",	cmd_import_log,
	    "FILE... [--format combined|common] [--site S] [--create]",
	    "Counts nginx or Apache access logs (plain, gzip or -) into history;\n"
	    "a site the store and the configuration do not know needs --create." },
	{ "set",	cmd_set,
	    "--site S [--path P] --views N [--visitors N] [--force] [--create]",
	    "Makes an all-time count equal N. Below what today already has\n"
	    "needs --force; a site the store and the configuration do not\n"
	    "know needs --create." },
	{ "reset",	cmd_reset,	"--site S [--path P] [--yes]",
	    "Deletes the counts of a site or one of its paths. Asks on a\n"
	    "terminal; elsewhere needs --yes. Nothing to delete is an error." },
	{ "backup",	cmd_backup,	"DEST",
	    "A consistent, compacted copy, taken while tallyd runs, without\n"
	    "the day's salt or visitor ids." },
	{ "check",	cmd_check,	"",
	    "Verifies the store; exit 1 with what is wrong." },
	{ "help",	NULL,		"[COMMAND]",
	    "This list, or one command's usage." },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

static const char synopsis[] =
    "usage: tallyctl [--data DIR | --store URL | --config FILE] [--json] "
    "COMMAND [ARGS]\n";

static void
usage(FILE *f)
{
	size_t i;

	fputs(synopsis, f);
	fputs("\ncommands:\n", f);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s%s%s\n", commands[i].name,
		    commands[i].args[0] ? " " : "", commands[i].args);
	fputs("\n"
	    "  --data DIR     the store (./tally-data)\n"
	    "  --store URL    a shared store: postgresql://...\n"
	    "  --config FILE  tallyd's configuration: its store and"
	    " time zone\n"
	    "  --json         JSON output for scripts\n"
	    "\n"
	    "reset asks for confirmation on a terminal; elsewhere it needs"
	    " --yes\n"
	    "(without it: exit 2). import-log exits 0 unless no line could be"
	    " read.\n"
	    "tallyctl help COMMAND (or COMMAND --help) tells more of one.\n"
	    "Exit status: 0 ok, 1 failure, 2 usage, 78 configuration.\n", f);
}

/* The usage of one command, on f. */
static void
command_usage(FILE *f, const struct command *c)
{
	fprintf(f, "usage: tallyctl [--data DIR | --store URL | --config FILE] "
	    "[--json] %s%s%s"
	    "\n\n%s\n", c->name, c->args[0] ? " " : "", c->args, c->help);
}

/* Edit distance, for "did you mean": a mistyped name is near its own. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, diag;
	size_t row[64];

	if (la >= sizeof(row) / sizeof(row[0]) || lb >= sizeof(row) /
	    sizeof(row[0]))
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			prev = row[j];
			cur = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < cur)
				cur = row[j] + 1;
			if (row[j - 1] + 1 < cur)
				cur = row[j - 1] + 1;
			row[j] = cur;
			diag = prev;
		}
	}
	return row[lb];
}

/* The candidate nearest to name, if near enough to be a slip. */
static const char *
nearest(const char *name, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t d, bestd = SIZE_MAX, i;

	for (i = 0; i < n; i++)
		if ((d = distance(name, candidates[i])) < bestd) {
			bestd = d;
			best = candidates[i];
		}
	return bestd <= 2 && bestd < strlen(name) ? best : NULL;
}

static const char *const global_options[] = { "data", "store", "config",
    "json", "help", "version" };

static const struct command *
command_find(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void vsay(const char *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
static void say(const char *, ...) TALLY_PRINTF(1, 2);

/* "tallyctl: CMD: message" (without cmd: "tallyctl: message") on stderr.
 * Messages quote what the user or a file gave, which may hold anything:
 * it is shown escaped. */
static void
vsay(const char *cmd, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	fputs("tallyctl: ", stderr);
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	ctl_eputs(msg);
	fputc('\n', stderr);
}

static void
say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(NULL, fmt, ap);
	va_end(ap);
}

void
ctl_eputs(const char *s)
{
	char out[4 * 2048 + 1];

	text_escape(out, sizeof(out), s, strlen(s));
	fputs(out, stderr);
}

int
ctl_usage(struct ctl *ctl, const char *fmt, ...)
{
	const struct command *c;
	va_list ap;

	va_start(ap, fmt);
	vsay(ctl->cmd, fmt, ap);
	va_end(ap);
	if (ctl->cmd && (c = command_find(ctl->cmd)) != NULL)
		fprintf(stderr, "usage: tallyctl [--data DIR | --store URL | "
		    "--config FILE] [--json] %s%s%s\n", c->name, c->args[0] ? " " : "",
		    c->args);
	else
		fputs(synopsis, stderr);
	return EXIT_USAGE;
}

int
ctl_fail(struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(ctl->cmd, fmt, ap);
	va_end(ap);
	return 1;
}

/* Exits 0 after printing the usage of ctl's command (or the global one). */
static void ctl_help_exit(struct ctl *) __attribute__((noreturn));

static void
ctl_help_exit(struct ctl *ctl)
{
	const struct command *c;

	if (ctl->cmd && (c = command_find(ctl->cmd)) != NULL)
		command_usage(stdout, c);
	else
		usage(stdout);
	exit(0);
}

/* "unknown option --dta (did you mean --data?)" */
static int
unknown_option(struct ctl *ctl, const struct ctl_opt *opts, const char *arg,
    size_t nlen)
{
	const char *names[32 + sizeof(global_options) /
	    sizeof(global_options[0])], *near;
	char given[64];
	size_t n = 0, i;

	for (i = 0; i < sizeof(global_options) / sizeof(global_options[0]);
	    i++)
		names[n++] = global_options[i];
	for (; opts && opts->name && n < sizeof(names) / sizeof(names[0]);
	    opts++)
		names[n++] = opts->name;
	snprintf(given, sizeof(given), "%.*s", (int)nlen, arg);
	if ((near = nearest(given, names, n)) != NULL)
		return ctl_usage(ctl, "unknown option --%s (did you mean "
		    "--%s?)", given, near);
	return ctl_usage(ctl, "unknown option --%s", given);
}

/*
 * The global flags are looked for everywhere, so that both "tallyctl
 * --json stats" and "tallyctl stats --json" work. No getopt: its
 * permutation and short-option clustering would let "-" (stdin) and
 * values such as "-1" mean something else than the user wrote.
 */
int
ctl_parse(struct ctl *ctl, int argc, char **argv, const struct ctl_opt *opts,
    char **args, int *nargs, int minargs, int maxargs)
{
	const struct ctl_opt *o;
	const char *arg, *eq, *val;
	size_t nlen;
	bool dashdash = false;
	int i;

	*nargs = 0;
	for (i = 1; i < argc; i++) {
		arg = argv[i];
		if (dashdash || arg[0] != '-' || strcmp(arg, "-") == 0) {
			if (maxargs >= 0 && *nargs >= maxargs)
				return ctl_usage(ctl, "unexpected argument: %s",
				    arg);
			args[(*nargs)++] = argv[i];
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0)
			ctl_help_exit(ctl);
		if (arg[1] != '-')
			return ctl_usage(ctl, "unknown option: %s", arg);
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);

		if (nlen == 4 && strncmp(arg, "json", 4) == 0 && !eq) {
			ctl->json = true;
			continue;
		}
		if (nlen == 4 && strncmp(arg, "help", 4) == 0 && !eq)
			ctl_help_exit(ctl);
		for (o = opts; o && o->name; o++)
			if (strlen(o->name) == nlen &&
			    strncmp(o->name, arg, nlen) == 0)
				break;
		if (o && o->name && o->flag) {
			if (eq)
				return ctl_usage(ctl, "--%s takes no value",
				    o->name);
			*o->flag = true;
			continue;
		}
		if (!(o && o->name) &&
			    !(nlen == 4 && strncmp(arg, "data", 4) == 0) &&
			    !(nlen == 5 && strncmp(arg, "store", 5) == 0) &&
			    !(nlen == 6 && strncmp(arg, "config", 6) == 0))
			return unknown_option(ctl, opts, arg, nlen);
		/* Everything else takes a value. */
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return ctl_usage(ctl, "--%.*s needs a value", (int)nlen,
			    arg);
		if (o && o->name)
			*o->value = val;
		else if (nlen == 4 && strncmp(arg, "data", 4) == 0)
			ctl->data_flag = val;
		else if (nlen == 5 && strncmp(arg, "store", 5) == 0)
			ctl->store_flag = val;
		else
			ctl->config_file = val;
	}
	if (*nargs < minargs)
		return ctl_usage(ctl, "missing argument");
	return 0;
}

int
ctl_setup(struct ctl *ctl)
{
	const char *line, *end;
	char err[8192];

	if (ctl->cfg_ready)
		return 0;
	config_init(&ctl->cfg);
	ctl->cfg_ready = true;
	if (ctl->config_file &&
	    config_load(&ctl->cfg, ctl->config_file, err, sizeof(err)) == -1) {
		/* One error a line, each as tallyctl's. */
		for (line = err; *line != '\0'; line = end + (*end != '\0')) {
			end = line + strcspn(line, "\n");
			say("%.*s", (int)(end - line), line);
		}
		return EXIT_CONFIG;
	}
	if (config_finish(&ctl->cfg, err, sizeof(err)) == -1) {
		say("%s: %s", ctl->config_file ? ctl->config_file :
		    "configuration", err);
		return EXIT_CONFIG;
	}
	/* Like tallyd, a flag wins over the file, and the file's url over
	 * its data. */
	if (ctl->store_flag && ctl->data_flag)
		return ctl_usage(ctl, "--data and --store: one store at a "
		    "time");
	if (ctl->store_flag && !location_is_url(ctl->store_flag))
		return ctl_usage(ctl, "--store: not a postgresql:// URL");
	if (ctl->data_flag)
		ctl->data = ctl->data_flag;
	else if (ctl->store_flag)
		ctl->data = ctl->store_flag;
	else
		ctl->data = ctl->cfg.url ? ctl->cfg.url : ctl->cfg.data;
	if (ctl->data == NULL || ctl->data[0] == '\0') {
		fprintf(stderr, "tallyctl: no data directory\n");
		return EXIT_CONFIG;
	}
	location_shown(ctl->where, sizeof(ctl->where), ctl->data);
	/* Days must be tallyd's days. */
	if (day_set_timezone(ctl->cfg.timezone) == -1) {
		say("unknown time zone \"%s\"", ctl->cfg.timezone);
		return EXIT_CONFIG;
	}
	return 0;
}

int
ctl_open(struct ctl *ctl, int flags)
{
	char err[1024];
	int rc;

	if ((rc = ctl_setup(ctl)) != 0)
		return rc;
	if (store_open(&ctl->store, ctl->data, flags, err, sizeof(err)) !=
	    STORE_OK) {
		ctl->store = NULL;
		return ctl_fail(ctl, "opening the store: %s", err);
	}
	return 0;
}

int
ctl_site(struct ctl *ctl, const char *given, const char **site)
{
	if (given == NULL) {
		*site = DEFAULT_SITE;
		return 0;
	}
	if (!site_name_valid(given))
		return ctl_usage(ctl, "invalid site id \"%s\" (a-z, 0-9, '.' "
		    "and '-', at most %d)", given, SITE_NAME_MAX);
	*site = given;
	return 0;
}

int
ctl_path(struct ctl *ctl, const char *opt, const char *given, char *out)
{
	enum path_error pe;

	pe = path_normalize(given, strlen(given), out);
	if (pe != PATH_OK)
		return ctl_usage(ctl, "%s \"%s\": %s", opt, given,
		    path_strerror(pe));
	return 0;
}

/* Collects the sites of the store for a message. */
struct known_sites {
	const struct config *cfg;	/* its sites are listed already */
	struct buf	 list;
	size_t		 n;
};

static int
add_known_site(void *arg, const char *site, const char *path,
    const struct series_counts *sc)
{
	struct known_sites *ks = arg;

	(void)sc;
	if (path[0] != '\0' || config_site(ks->cfg, site) != NULL)
		return 0;	/* a page (its site came first), or listed */
	buf_puts(&ks->list, ks->n++ ? ", " : "");
	buf_puts(&ks->list, site);
	return 0;
}

int
ctl_site_known(struct ctl *ctl, struct store_view *v, const char *site)
{
	struct known_sites ks;
	struct series_counts sc;
	size_t i;

	if (config_site(&ctl->cfg, site) != NULL)
		return 0;
	if (store_get(v, site, SITE_SERIES, 0, &sc) != STORE_OK)
		return ctl_fail(ctl, "reading %s: %s", site,
		    store_error(ctl->store));
	if (sc.exists)
		return 0;
	memset(&ks, 0, sizeof(ks));
	ks.cfg = &ctl->cfg;
	buf_init(&ks.list);
	for (i = 0; i < ctl->cfg.nsites; i++) {
		buf_puts(&ks.list, ks.n++ ? ", " : "");
		buf_puts(&ks.list, ctl->cfg.sites[i].name);
	}
	store_each_series(v, NULL, add_known_site, &ks);
	ctl_fail(ctl, "unknown site \"%s\"; known sites: %s", site,
	    ks.n ? ks.list.data : "none");
	buf_free(&ks.list);
	return 1;
}

int
ctl_format(struct ctl *ctl, const char *given, enum ctl_format *fmt)
{
	if (given == NULL)
		*fmt = FMT_GUESS;
	else if (strcmp(given, "csv") == 0)
		*fmt = FMT_CSV;
	else if (strcmp(given, "json") == 0)
		*fmt = FMT_JSON;
	else
		return ctl_usage(ctl, "--format: csv or json, not \"%s\"",
		    given);
	return 0;
}

int
ctl_number(const char *s, uint64_t max, uint64_t *out)
{
	return number_parse(s, s ? strlen(s) : 0, max, out);
}

char *
ctl_thousands(char out[NUM_STRLEN], uint64_t v)
{
	format_thousands(out, NUM_STRLEN, v);
	return out;
}

const char *
ctl_sgr(const struct ctl *ctl, const char *code)
{
	static char seq[4][16];
	static int next;
	char *s;

	if (!ctl->color)
		return "";
	/* A few at once, for one printf. */
	s = seq[next++ % 4];
	snprintf(s, sizeof(seq[0]), "\033[%sm", code);
	return s;
}

/* Writes stdout out and reports a failure to (a full disk, a closed
 * pipe). Returns the exit code to use instead of rc. */
static int
ctl_finish_output(struct ctl *ctl, int rc)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		ctl_fail(ctl, "writing the output: %s", strerror(errno));
		return 1;
	}
	return rc;
}

/*
 * Tables.
 */

void
table_init(struct table *t, const char *align)
{
	memset(t, 0, sizeof(*t));
	t->align = align;
	t->ncols = strlen(align);
}

void
table_row(struct table *t, ...)
{
	va_list ap;
	const char *s;
	size_t i;

	if (t->ncells + t->ncols > t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		while (t->cap < t->ncells + t->ncols)
			t->cap *= 2;
		if ((t->cells = reallocarray(t->cells, t->cap,
		    sizeof(*t->cells))) == NULL)
			fatal("table");
	}
	va_start(ap, t);
	for (i = 0; i < t->ncols; i++) {
		s = va_arg(ap, const char *);
		if ((t->cells[t->ncells++] = strdup(s ? s : "")) == NULL)
			fatal("table");
	}
	va_end(ap);
}

/* Columns are as wide as their widest cell in code points: paths and
 * labels may be UTF-8, and bars are made of block characters. */
static size_t
cell_width(const char *s)
{
	size_t len = strlen(s);
	const char *p;
	size_t w = 0;

	if (!utf8_valid(s, len))
		return len;
	/* Skip SGR sequences, which take no room. */
	for (p = s; *p; ) {
		if (*p == '\033') {
			while (*p && *p != 'm')
				p++;
			if (*p)
				p++;
			continue;
		}
		if (((unsigned char)*p & 0xc0) != 0x80)
			w++;
		p++;
	}
	return w;
}

static bool
rest_empty(const struct table *t, size_t r, size_t from)
{
	size_t c;

	for (c = from; c < t->ncols; c++)
		if (t->cells[r * t->ncols + c][0] != '\0')
			return false;
	return true;
}

void
table_print(struct table *t, const struct ctl *ctl, FILE *f, bool header,
    int indent)
{
	size_t *width, r, c, nrows, w;
	const char *cell;

	if (t->ncols == 0 || t->ncells == 0)
		return;
	if ((width = calloc(t->ncols, sizeof(*width))) == NULL)
		fatal("table");
	nrows = t->ncells / t->ncols;
	for (r = 0; r < nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((w = cell_width(t->cells[r * t->ncols + c])) >
			    width[c])
				width[c] = w;
	for (r = 0; r < nrows; r++) {
		fprintf(f, "%*s", indent, "");
		if (header && r == 0)
			fputs(ctl_sgr(ctl, "1"), f);
		for (c = 0; c < t->ncols; c++) {
			cell = t->cells[r * t->ncols + c];
			w = cell_width(cell);
			if (t->align[c] == 'r')
				fprintf(f, "%*s", (int)(width[c] - w), "");
			fputs(cell, f);
			/* No trailing blanks after the last cell. */
			if (!rest_empty(t, r, c + 1)) {
				if (t->align[c] != 'r')
					fprintf(f, "%*s", (int)(width[c] - w),
					    "");
				fputs("  ", f);
			}
		}
		if (header && r == 0)
			fputs(ctl_sgr(ctl, "0"), f);
		fputc('\n', f);
	}
	free(width);
}

void
table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

static int
unknown_command(const char *name)
{
	const char *names[NCOMMANDS], *near;
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	if ((near = nearest(name, names, NCOMMANDS)) != NULL)
		say("unknown command %s (did you mean %s?)", name, near);
	else
		say("unknown command %s", name);
	usage(stderr);
	return EXIT_USAGE;
}

/* tallyctl help [COMMAND] */
static int
help(int argc, char **argv)
{
	const struct command *c;

	if (argc == 0) {
		usage(stdout);
		return 0;
	}
	if (argc > 1)
		return unknown_command(argv[1]);
	if ((c = command_find(argv[0])) == NULL)
		return unknown_command(argv[0]);
	command_usage(stdout, c);
	return 0;
}

/*
 * LMDB maps the store into memory: a data file cut short (a truncated
 * copy, a failing disk) shows up as SIGBUS when a page past its end is
 * read. Say so and stop instead of dying without a word.
 */
static void
on_sigbus(int sig)
{
	static const char msg[] = "tallyctl: reading the store failed "
	    "(SIGBUS): its data file is truncated or unreadable\n";
	ssize_t w;

	(void)sig;
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	_exit(1);
}

int
main(int argc, char *argv[])
{
	struct ctl ctl;
	const struct command *c;
	struct sigaction sa;
	const char *nc, *term;
	char **cargv = NULL;
	int i, cmdi = -1, cargc, rc;

	log_init("tallyctl", LOG_LEVEL_INFO);
	memset(&ctl, 0, sizeof(ctl));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);

	/* The command is the first operand; the global flags before it
	 * are handed to it with its own arguments. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("tallyctl %s\n", TALLY_VERSION);
			return 0;
		}
		if ((strcmp(argv[i], "--data") == 0 ||
		    strcmp(argv[i], "--store") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			i++;
			continue;
		}
		/* Before the command, only the global flags: a slip such
		 * as --dta must not make its value the command. */
		if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0' &&
		    strcmp(argv[i], "--json") != 0 &&
		    strncmp(argv[i], "--data=", 7) != 0 &&
		    strncmp(argv[i], "--store=", 8) != 0 &&
		    strncmp(argv[i], "--config=", 9) != 0 &&
		    strcmp(argv[i], "--data") != 0 &&
		    strcmp(argv[i], "--store") != 0 &&
		    strcmp(argv[i], "--config") != 0)
			return unknown_option(&ctl, NULL, argv[i] + 2,
			    strcspn(argv[i] + 2, "="));
		if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
			cmdi = i;
			break;
		}
		if (strcmp(argv[i], "--") == 0) {
			if (i + 1 < argc)
				cmdi = i + 1;
			break;
		}
	}
	if (cmdi == -1) {
		/* Still report a bad flag as such. */
		if (ctl_parse(&ctl, argc, argv, NULL, NULL, &cargc, 0, 0) != 0)
			return EXIT_USAGE;
		fprintf(stderr, "tallyctl: no command given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((c = command_find(argv[cmdi])) == NULL)
		return unknown_command(argv[cmdi]);
	if (c->fn == NULL)
		return help(argc - cmdi - 1, argv + cmdi + 1);
	ctl.cmd = c->name;

	/* argv for the command: its name, the flags before it, the rest. */
	if ((cargv = calloc((size_t)argc + 1, sizeof(*cargv))) == NULL)
		fatal("calloc");
	cargc = 0;
	cargv[cargc++] = argv[cmdi];
	for (i = 1; i < cmdi; i++)
		if (strcmp(argv[i], "--") != 0)
			cargv[cargc++] = argv[i];
	for (i = cmdi + 1; i < argc; i++)
		cargv[cargc++] = argv[i];

	nc = getenv("NO_COLOR");
	term = getenv("TERM");
	ctl.color = isatty(STDOUT_FILENO) && nc == NULL &&
	    (term == NULL || strcmp(term, "dumb") != 0);

	rc = c->fn(&ctl, cargc, cargv);
	rc = ctl_finish_output(&ctl, rc);

	store_close(ctl.store);
	if (ctl.cfg_ready)
		config_free(&ctl.cfg);
	free(cargv);
	return rc;
}
