/* insight.c — being written (see hotel_int.h). */
#include "hotel_int.h"

int hotelp_insight_init(void)
{
    return CRM_OK;
}
