/*
 * The documentation against the key table: every key of config_keys is
 * in tallyd.conf(5) under its section with its default, in the example
 * tallyd.conf commented out with its default value, and its flag in
 * tallyd(8); the man page's list of keys that need a restart is the
 * table's; and neither file names a key the table lacks.
 *
 *	test_config_docs tallyd.conf.5.scd tallyd.conf tallyd.8.scd
 */

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/config.h"
#include "check.h"

#define MAX_KEYS	64

static char *
slurp(const char *path)
{
	FILE	*f;
	char	*text;
	long	 len;

	if ((f = fopen(path, "r")) == NULL || fseek(f, 0, SEEK_END) == -1 ||
	    (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) == -1 ||
	    (text = malloc((size_t)len + 1)) == NULL ||
	    fread(text, 1, (size_t)len, f) != (size_t)len) {
		perror(path);
		exit(1);
	}
	text[len] = '\0';
	fclose(f);
	return text;
}

/* "[server]" or "site blog" to the table's section: "server", "site". */
static const char *
section_of(const char *s, size_t len)
{
	static const char *const names[] = { "server", "store", "count" };
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i]) && strncmp(s, names[i], len) == 0)
			return names[i];
	if (len >= 4 && strncmp(s, "site", 4) == 0)
		return "site";
	return NULL;
}

static long
key_index(const char *section, const char *name, size_t len)
{
	size_t	 i;

	for (i = 0; i < config_nkeys; i++)
		if (section != NULL &&
		    strcmp(config_keys[i].section, section) == 0 &&
		    strlen(config_keys[i].name) == len &&
		    strncmp(config_keys[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

/* Copies s[0..len) with runs of blanks made one space. */
static void
squeeze(const char *s, size_t len, char *out, size_t outsz)
{
	size_t	 i, n = 0;

	for (i = 0; i < len && n + 1 < outsz; i++) {
		if (isspace((unsigned char)s[i])) {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
		} else
			out[n++] = s[i];
	}
	out[n] = '\0';
}

static void
check_default(const struct config_key *k, const char *entry)
{
	const char	*d;
	char		 want[256];

	if (k->def == NULL)
		return;		/* inherited: the text says from where */
	if ((d = strstr(entry, "Default: ")) == NULL) {
		fprintf(stderr, "tallyd.conf(5): %s gives no default\n",
		    k->name);
		CHECK(0);
		return;
	}
	d += strlen("Default: ");
	if (k->def[0] == '\0')
		snprintf(want, sizeof(want), "none");
	else
		snprintf(want, sizeof(want), "*%s*", k->def);
	if (strncmp(d, want, strlen(want)) != 0) {
		fprintf(stderr, "tallyd.conf(5): %s: \"Default: %.40s\", "
		    "want %s\n", k->name, d, want);
		CHECK(0);
	}
}

/* Entries are "*key* = ..." lines under "# [section]", their text the
 * indented lines that follow. */
static void
test_man_page(const char *path)
{
	char		*text = slurp(path), entry[2048], *line, *next, *end;
	const char	*section = NULL;
	int		 seen[MAX_KEYS] = { 0 };
	long		 cur = -1, k;
	size_t		 i, elen = 0;

	CHECK(config_nkeys <= MAX_KEYS);
	entry[0] = '\0';
	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] == '\t' && cur >= 0) {
			elen = strlen(entry);
			snprintf(entry + elen, sizeof(entry) - elen, " %s",
			    line + 1);
			continue;
		}
		if (cur >= 0) {
			squeeze(entry, strlen(entry), entry, sizeof(entry));
			check_default(&config_keys[cur], entry);
			cur = -1;
		}
		if (line[0] == '#') {
			section = NULL;
			if (strncmp(line, "# [", 3) == 0 &&
			    (end = strpbrk(line + 3, " ]")) != NULL)
				section = section_of(line + 3,
				    (size_t)(end - line - 3));
			continue;
		}
		if (section == NULL || line[0] != '*' ||
		    (end = strchr(line + 1, '*')) == NULL ||
		    strncmp(end, "* =", 3) != 0)
			continue;
		k = key_index(section, line + 1, (size_t)(end - line - 1));
		if (k == -1) {
			fprintf(stderr, "tallyd.conf(5) names [%s] %.*s, which "
			    "is no key\n", section, (int)(end - line - 1),
			    line + 1);
			CHECK(0);
			continue;
		}
		seen[k]++;
		cur = k;
		entry[0] = '\0';
	}
	if (cur >= 0) {
		squeeze(entry, strlen(entry), entry, sizeof(entry));
		check_default(&config_keys[cur], entry);
	}
	for (i = 0; i < config_nkeys; i++) {
		if (seen[i] != 1)
			fprintf(stderr, "tallyd.conf(5) describes [%s] %s %d "
			    "times\n", config_keys[i].section,
			    config_keys[i].name, seen[i]);
		CHECK_INT(seen[i], 1);
	}
	free(text);
}

/* The sentence "Keys that take effect only after a restart: *a*, *b*."
 * names the table's restart keys, each once. */
static void
test_restart_list(const char *path)
{
	static const char lead[] = "Keys that take effect only after a restart:";
	char		*text = slurp(path), list[1024], *p, *end;
	int		 seen[MAX_KEYS] = { 0 };
	size_t		 i, j;
	bool		 found;

	if ((p = strstr(text, lead)) == NULL ||
	    (end = strchr(p, '.')) == NULL) {
		fprintf(stderr, "tallyd.conf(5) lacks \"%s\"\n", lead);
		CHECK(0);
		free(text);
		return;
	}
	p += strlen(lead);
	squeeze(p, (size_t)(end - p), list, sizeof(list));
	for (p = strtok(list, " ,*"); p != NULL; p = strtok(NULL, " ,*")) {
		found = false;
		for (j = 0; j < config_nkeys; j++) {
			if (strcmp(config_keys[j].section, "site") != 0 &&
			    strcmp(config_keys[j].name, p) == 0) {
				seen[j]++;
				found = true;
			}
		}
		if (!found)
			fprintf(stderr, "restart list: %s is no key\n", p);
		CHECK(found);
	}
	for (i = 0; i < config_nkeys; i++) {
		if (seen[i] != ((config_keys[i].flags & CONFIG_RESTART) ? 1 : 0))
			fprintf(stderr, "restart list: %s named %d times\n",
			    config_keys[i].name, seen[i]);
		CHECK_INT(seen[i], (config_keys[i].flags & CONFIG_RESTART) ?
		    1 : 0);
	}
	free(text);
}

/* Keys are "#key = value" lines, sections "[name]" or "#[site name]";
 * comments have a blank after the '#'. */
static void
test_example(const char *path)
{
	char		*text = slurp(path), *line, *next, *p, *eq, *v, *e;
	const char	*section = NULL;
	int		 seen[MAX_KEYS] = { 0 };
	long		 k;
	size_t		 i;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		p = line[0] == '#' ? line + 1 : line;
		if (*p == '[' && (e = strpbrk(p + 1, " ]")) != NULL) {
			section = section_of(p + 1, (size_t)(e - p - 1));
			continue;
		}
		if (line[0] != '#' || !islower((unsigned char)p[0]) ||
		    (eq = strstr(p, " =")) == NULL)
			continue;
		k = key_index(section, p, (size_t)(eq - p));
		if (k == -1) {
			fprintf(stderr, "tallyd.conf names [%s] %.*s, which is "
			    "no key\n", section ? section : "", (int)(eq - p), p);
			CHECK(0);
			continue;
		}
		seen[k]++;
		v = eq + 2;
		while (*v == ' ')
			v++;
		if (config_keys[k].def != NULL &&
		    strcmp(v, config_keys[k].def) != 0) {
			fprintf(stderr, "tallyd.conf: %s = \"%s\", the default is "
			    "\"%s\"\n", config_keys[k].name, v,
			    config_keys[k].def);
			CHECK(0);
		}
	}
	for (i = 0; i < config_nkeys; i++) {
		if (seen[i] != 1)
			fprintf(stderr, "tallyd.conf shows [%s] %s %d times\n",
			    config_keys[i].section, config_keys[i].name,
			    seen[i]);
		CHECK_INT(seen[i], 1);
	}
	free(text);
}

/* Every key outside [site NAME] is a flag: "--max-pages". */
static void
test_flags(const char *path)
{
	char	*text = slurp(path), flag[80];
	size_t	 i;

	for (i = 0; i < config_nkeys; i++) {
		if (strcmp(config_keys[i].section, "site") == 0)
			continue;
		flag[0] = '*';
		flag[1] = flag[2] = '-';
		config_flag_name(&config_keys[i], flag + 3, sizeof(flag) - 4);
		strcat(flag, "*");
		if (strstr(text, flag) == NULL)
			fprintf(stderr, "tallyd(8) lacks %s\n", flag);
		CHECK(strstr(text, flag) != NULL);
	}
	free(text);
}

int
main(int argc, char *argv[])
{
	if (argc != 4) {
		fprintf(stderr, "usage: test_config_docs tallyd.conf.5.scd "
		    "tallyd.conf tallyd.8.scd\n");
		return 2;
	}
	test_man_page(argv[1]);
	test_restart_list(argv[1]);
	test_example(argv[2]);
	test_flags(argv[3]);
	return check_done();
}
