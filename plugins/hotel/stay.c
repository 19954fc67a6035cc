/* stay.c — being written (see hotel_int.h). */
#include "hotel_int.h"

int hotelp_stay_init(void)
{
    return CRM_OK;
}
