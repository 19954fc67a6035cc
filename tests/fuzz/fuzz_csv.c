/*
 * fuzz_csv.c — CSV import (SECURITY.md H10): the input goes through the
 * RFC 4180 reader alone (every record read to the end, with invariants on
 * what it returns), then through crm_import_csv into fz.thing, in the mode
 * its first byte selects (even: all-or-nothing, odd: per line).
 */
#include "fuzz.h"

#include "../../kernel/csv.h"
#include "../../kernel/io.h"

static void read_all(const char *data, size_t size)
{
    crm_csv_reader r;
    int line = 0, last = 0, rc;
    crm_csv_reader_init(&r, data, size, 100);
    while ((rc = crm_csv_read(&r, &line)) != 0) {
        if (rc < 0 && rc != CRM_EINVALID) abort();
        if (line < 1 || line < last) {
            fprintf(stderr, "csv: line numbers go backwards: %d after %d\n", line, last);
            abort();
        }
        last = line;
        if (rc == 1) {
            if (r.nfields < 1 || r.nfields > 100) abort();
            for (int i = 0; i < r.nfields; i++) {
                /* every byte of every field must be readable */
                volatile unsigned sum = 0;
                for (size_t j = 0; j < r.fields[i].len; j++) sum += (unsigned char)r.fields[i].ptr[j];
                (void)sum;
            }
        }
    }
    crm_csv_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crm_kernel *k = fz_kernel_get();
    if (size < 1 || size > 1 << 16) return 0;
    int mode = data[0] & 1 ? CRM_IMPORT_LINE : CRM_IMPORT_ALL;
    const char *csv = (const char *)data + 1;
    size_t len = size - 1;

    read_all(csv, len);

    crm_ctx ctx;
    json_t *result = NULL;
    crm_ctx_init(&ctx, k, crm_principal_system(), NULL);
    if (crm_import_csv(&ctx, FZ_TYPE, csv, len, mode, &result) == CRM_OK) json_decref(result);
    return 0;
}
