/* The exit codes of tallyd and tallyctl, as their man pages give them. */
#ifndef TALLY_EXITCODES_H
#define TALLY_EXITCODES_H

#define EXIT_USAGE	2	/* a bad flag or argument */
#define EXIT_CONFIG	78	/* a bad configuration (EX_CONFIG) */

#endif
