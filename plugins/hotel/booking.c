/* booking.c — being written (see hotel_int.h). */
#include "hotel_int.h"

int hotelp_booking_init(void)
{
    return CRM_OK;
}
