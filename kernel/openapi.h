/*
 * openapi.h — the OpenAPI 3.0 description of the HTTP API, generated from the
 * live schema on every call (no cache: a custom field added at run time is in
 * the next document; building it is cheap next to a client fetching it).
 *
 * The document describes the API as the caller can use it: record types the
 * caller may not read are left out, and so are fields hidden from the caller
 * (SECURITY A2: a hidden field's name is not shown either). Admins see every
 * type and field. That is why GET /openapi.json requires authentication
 * rather than being public as is common: a public document would disclose the
 * names of every type and custom field of the site.
 */
#ifndef CRM_OPENAPI_H
#define CRM_OPENAPI_H

#include "kernel.h"

/* The document for ctx's principal (new reference). `version` is the server's. */
json_t *crm_openapi_document(crm_ctx *ctx, const char *version);

/* The JSON Schema (OpenAPI 3.0 dialect) of one field, as the API reads and writes it. */
json_t *crm_openapi_field_schema(const crm_field *f);

#endif
