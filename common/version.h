/* The one version string every legato program reports with --version. */
#ifndef LEGATO_COMMON_VERSION_H
#define LEGATO_COMMON_VERSION_H

#define LEGATO_VERSION "0.1.0"

#endif
