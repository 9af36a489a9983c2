//go:build linux && cgo

// Entry points of the C phases; the constructor in entry.c picks one.
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

// berth_monitor_main runs the monitor loop described in doc.go. It never
// returns: it ends in execve of _BERTH_MON_NEXT or in _exit(125).
void berth_monitor_main(void);

// berth_init_main runs the container's minimal init. It never returns.
void berth_init_main(int argc, char **argv);

#endif
