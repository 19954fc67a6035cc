/*
 * fuzz_conf.c — the plugins.conf parser (kernel/conf.c): the input is written
 * as a plugins.conf and loaded. Oracles from conf.h's contract: a loaded file
 * has valid, findable, distinct section names, each with exactly one of
 * source and git; a refused one has a message naming the file and line.
 */
#include "fuzz.h"

#include "../../kernel/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[128];
    if (!path[0]) snprintf(path, sizeof path, "%s/plugins.conf", fz_tmpdir());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    crm_conf *conf = NULL;
    int rc = crm_conf_load(path, &conf);
    if (rc == CRM_OK) {
        for (int i = 0; i < conf->nplugins; i++) {
            const crm_conf_plugin *p = &conf->plugins[i];
            if (!crm_ident_valid(p->name, 63) || crm_conf_find(conf, p->name) != p ||
                !p->source == !p->git || !json_is_object(p->settings) || p->line < 1) {
                fprintf(stderr, "conf: a loaded section breaks the contract: [%s]\n", p->name);
                abort();
            }
        }
        crm_conf_free(conf);
    } else {
        const char *msg = crm_error_last()->message;
        if (rc != CRM_EINVALID || !msg || strncmp(msg, path, strlen(path)) != 0 ||
            msg[strlen(path)] != ':') {
            fprintf(stderr, "conf: error %d without file:line: %s\n", rc, msg ? msg : "(null)");
            abort();
        }
    }
    return 0;
}
