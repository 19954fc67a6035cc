/*
 * conf.h — plugins.conf: which plugins a site enables, where each comes from,
 * and their settings. The format (documented in the shipped plugins.conf):
 *
 *   # a comment; blank lines are ignored
 *   [crm]                       # a plugin section: its name
 *   source = plugins/crm        # in-tree directory (relative to the file's directory)
 *   enabled = yes               # yes | no (default yes)
 *   pipeline.stages = new,won   # any other key: a setting, read by the plugin
 *
 *   [hotel]
 *   git = /srv/git/crm-hotel    # a git repository (local path or https:// URL)
 *   ref = v1.2.0                # tag, branch or 40-hex commit (default: HEAD)
 *   requires = crm >= 1.0, < 2  # optional: checked against the descriptor
 *
 * Every error names the file and line: "plugins.conf:7: ...".
 */
#ifndef CRM_CONF_H
#define CRM_CONF_H

#include "util.h"

#include <jansson.h>

typedef struct crm_conf_plugin {
    char *name;     /* [section] name: [a-z][a-z0-9_]* */
    int line;       /* the section's line, for messages */
    bool enabled;
    char *source;   /* in-tree directory (absolute after loading), or NULL */
    char *git;      /* repository URL or path, or NULL */
    char *ref;      /* tag, branch or commit; NULL: HEAD */
    json_t *settings; /* object: every other key → string value */
} crm_conf_plugin;

typedef struct crm_conf {
    char *path;     /* the file read */
    crm_conf_plugin *plugins;
    int nplugins;
} crm_conf;

/*
 * Read and check plugins.conf. Errors: CRM_EINVALID "plugins.conf:LINE: what"
 * (unknown key syntax, duplicate section, both or neither of source/git,
 * bad name, bad enabled value, line too long, invalid UTF-8); CRM_ENOTFOUND
 * when the file does not exist.
 */
int crm_conf_load(const char *path, crm_conf **out);
void crm_conf_free(crm_conf *conf);
/* The section of `name`, or NULL. */
const crm_conf_plugin *crm_conf_find(const crm_conf *conf, const char *name);

#endif
