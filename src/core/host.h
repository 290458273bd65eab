/* The host API handed to each plugin instance (see plugin.h). */
#ifndef SFK_HOST_H
#define SFK_HOST_H

struct sfk_instance;

/* Fill inst->host for inst (inst->d, kind and tag already set). */
void sfk_host_init(struct sfk_instance *inst);

#endif
