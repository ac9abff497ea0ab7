"""Named exit codes (sysexits.h), shared by both command-line entry points."""

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and the answer is "no" (refused transition, ...)
EXIT_USAGE = 64  # EX_USAGE: bad arguments
EXIT_DATAERR = 65  # EX_DATAERR: bad input data (malformed CSV, unknown or malformed id)
EXIT_NOINPUT = 66  # EX_NOINPUT: input file missing or unreadable
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: AWS or Meta could not be reached
EXIT_CONFIG = 78  # EX_CONFIG: invalid configuration
