/* libFuzzer: the INI configuration, read from a file as tallyd reads it.
 * Every line of the errors must name the file; success must leave a
 * usable config. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tally/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char file[64], err[1024], *p, *nl;
	int fd;

	if ((fd = memfd_create("tally-fuzz", 0)) == -1)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	snprintf(file, sizeof(file), "/proc/self/fd/%d", fd);
	config_init(&cfg);
	if (config_load(&cfg, file, err, sizeof(err)) == 0) {
		if (config_finish(&cfg, err, sizeof(err)) == 0 &&
		    (cfg.nlisten == 0 || config_site(&cfg, DEFAULT_SITE) == NULL))
			abort();
	} else {
		/* Every error line names the file. */
		for (p = err; p != NULL; p = nl != NULL ? nl + 1 : NULL) {
			nl = strchr(p, '\n');
			if (strncmp(p, file, strlen(file)) != 0)
				abort();
		}
	}
	config_free(&cfg);
	close(fd);
	return 0;
}
