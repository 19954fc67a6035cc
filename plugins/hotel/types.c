/*
 * types.c — every record type of the hotel plugin, the fields it adds to the
 * base plugin's contact, and its default roles.
 *
 * Field specs are JSON, the same shape as GET /api/v1/types/{type}. Types are
 * declared in dependency order (a ref names a type declared above it, or one
 * of the crm plugin's). Money is a decimal (minor units, exact) next to a
 * currency; dates are "YYYY-MM-DD" and a stay's nights are [arrival, departure).
 */
#include "hotel_int.h"

#include <stddef.h>

#define CURRENCIES "[\"EUR\",\"USD\",\"GBP\",\"CHF\",\"ILS\",\"CNY\",\"RUB\",\"JPY\",\"IRR\"]"

static const crm_util_type_spec types[] = {
    {"hotel.room_type", "Room type",
     "[{\"name\":\"code\",\"kind\":\"text\",\"required\":true,\"unique\":true,\"max_length\":32},"
     " {\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"capacity\",\"kind\":\"int\",\"required\":true,\"label\":\"Guests (max)\"},"
     " {\"name\":\"base_rate\",\"kind\":\"decimal\",\"scale\":2,\"required\":true,"
     "  \"label\":\"Base rate per night\"},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES ",\"default\":\"EUR\"},"
     " {\"name\":\"amenities\",\"kind\":\"json\",\"label\":\"Amenities (list)\"},"
     " {\"name\":\"description\",\"kind\":\"text\",\"max_length\":10000}]"},

    {"hotel.rate", "Rate override",
     "[{\"name\":\"room_type\",\"kind\":\"ref\",\"ref\":\"hotel.room_type\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"starts\",\"kind\":\"date\",\"required\":true,\"indexed\":true,"
     "  \"label\":\"First night\"},"
     " {\"name\":\"ends\",\"kind\":\"date\",\"required\":true,\"label\":\"Last night\"},"
     " {\"name\":\"rate\",\"kind\":\"decimal\",\"scale\":2,\"required\":true,"
     "  \"label\":\"Rate per night\"},"
     " {\"name\":\"name\",\"kind\":\"text\",\"max_length\":200,\"label\":\"Season or event\"}]"},

    {"hotel.room", "Room",
     "[{\"name\":\"number\",\"kind\":\"text\",\"required\":true,\"unique\":true,"
     "  \"searchable\":true,\"max_length\":16},"
     " {\"name\":\"floor\",\"kind\":\"int\",\"indexed\":true},"
     " {\"name\":\"room_type\",\"kind\":\"ref\",\"ref\":\"hotel.room_type\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"housekeeping\",\"kind\":\"enum\","
     "  \"values\":[\"clean\",\"dirty\",\"out_of_service\"],\"default\":\"clean\","
     "  \"indexed\":true},"
     " {\"name\":\"amenities\",\"kind\":\"json\",\"label\":\"Amenities beyond the type's\"},"
     " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":2000}]"},

    {"hotel.guest", "Guest",
     "[{\"name\":\"contact\",\"kind\":\"ref\",\"ref\":\"crm.contact\",\"unique\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"indexed\":true,\"max_length\":200},"
     " {\"name\":\"email\",\"kind\":\"email\",\"searchable\":true,\"indexed\":true},"
     " {\"name\":\"phone\",\"kind\":\"phone\"},"
     " {\"name\":\"birthday\",\"kind\":\"date\"},"
     " {\"name\":\"language\",\"kind\":\"text\",\"max_length\":16,\"label\":\"Language (BCP 47)\"},"
     " {\"name\":\"nationality\",\"kind\":\"text\",\"max_length\":2,\"label\":\"Nationality (ISO)\"},"
     " {\"name\":\"preferences\",\"kind\":\"json\",\"label\":\"Preferences (floor, pillow, diet...)\"},"
     " {\"name\":\"companions\",\"kind\":\"json\","
     "  \"label\":\"Usual companions [{name, relation, birthday, contract}]\"},"
     " {\"name\":\"loyalty_tier\",\"kind\":\"enum\","
     "  \"values\":[\"member\",\"silver\",\"gold\",\"platinum\"],\"default\":\"member\","
     "  \"indexed\":true},"
     " {\"name\":\"loyalty_points\",\"kind\":\"int\",\"default\":0},"
     " {\"name\":\"vip\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":10000,\"searchable\":true}]"},

    {"hotel.reservation", "Reservation",
     "[{\"name\":\"guest\",\"kind\":\"ref\",\"ref\":\"hotel.guest\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"companions\",\"kind\":\"json\",\"label\":\"Companion guests (ids)\"},"
     " {\"name\":\"room\",\"kind\":\"ref\",\"ref\":\"hotel.room\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"arrival\",\"kind\":\"date\",\"required\":true,\"indexed\":true},"
     " {\"name\":\"departure\",\"kind\":\"date\",\"required\":true,\"indexed\":true},"
     " {\"name\":\"nights\",\"kind\":\"int\"},"
     " {\"name\":\"adults\",\"kind\":\"int\",\"default\":1},"
     " {\"name\":\"children\",\"kind\":\"int\",\"default\":0},"
     " {\"name\":\"rate\",\"kind\":\"decimal\",\"scale\":2,\"label\":\"Average rate per night\"},"
     " {\"name\":\"room_total\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"currency\",\"kind\":\"enum\",\"values\":" CURRENCIES ",\"default\":\"EUR\"},"
     " {\"name\":\"channel\",\"kind\":\"enum\","
     "  \"values\":[\"direct\",\"phone\",\"web\",\"agency\",\"ota\",\"walk_in\"],"
     "  \"default\":\"direct\",\"indexed\":true},"
     " {\"name\":\"status\",\"kind\":\"enum\","
     "  \"values\":[\"booked\",\"checked_in\",\"checked_out\",\"cancelled\",\"no_show\"],"
     "  \"default\":\"booked\",\"indexed\":true},"
     " {\"name\":\"checked_in_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"checked_out_at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"cancelled_at\",\"kind\":\"datetime\"},"
     " {\"name\":\"charges_total\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"folio_total\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"folio_closed\",\"kind\":\"bool\",\"default\":false},"
     " {\"name\":\"notes\",\"kind\":\"text\",\"max_length\":10000}]"},

    {"hotel.night", "Booked night",
     "[{\"name\":\"key\",\"kind\":\"text\",\"required\":true,\"unique\":true,\"max_length\":40,"
     "  \"label\":\"room:date\"},"
     " {\"name\":\"room\",\"kind\":\"ref\",\"ref\":\"hotel.room\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"date\",\"kind\":\"date\",\"required\":true,\"indexed\":true},"
     " {\"name\":\"reservation\",\"kind\":\"ref\",\"ref\":\"hotel.reservation\","
     "  \"required\":true,\"indexed\":true},"
     " {\"name\":\"rate\",\"kind\":\"decimal\",\"scale\":2}]"},

    {"hotel.service", "Service",
     "[{\"name\":\"code\",\"kind\":\"text\",\"required\":true,\"unique\":true,\"max_length\":32},"
     " {\"name\":\"name\",\"kind\":\"text\",\"required\":true,\"searchable\":true,"
     "  \"max_length\":200},"
     " {\"name\":\"category\",\"kind\":\"enum\","
     "  \"values\":[\"minibar\",\"spa\",\"transfer\",\"restaurant\",\"bar\",\"laundry\","
     "             \"parking\",\"room_service\",\"other\"],\"default\":\"other\",\"indexed\":true},"
     " {\"name\":\"price\",\"kind\":\"decimal\",\"scale\":2,\"required\":true},"
     " {\"name\":\"active\",\"kind\":\"bool\",\"default\":true}]"},

    {"hotel.charge", "Charge",
     "[{\"name\":\"reservation\",\"kind\":\"ref\",\"ref\":\"hotel.reservation\","
     "  \"required\":true,\"indexed\":true},"
     " {\"name\":\"service\",\"kind\":\"ref\",\"ref\":\"hotel.service\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"quantity\",\"kind\":\"int\",\"default\":1},"
     " {\"name\":\"unit_price\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"amount\",\"kind\":\"decimal\",\"scale\":2},"
     " {\"name\":\"at\",\"kind\":\"datetime\",\"indexed\":true},"
     " {\"name\":\"note\",\"kind\":\"text\",\"max_length\":500}]"},

    {"hotel.loyalty_entry", "Loyalty entry",
     "[{\"name\":\"guest\",\"kind\":\"ref\",\"ref\":\"hotel.guest\",\"required\":true,"
     "  \"indexed\":true},"
     " {\"name\":\"reservation\",\"kind\":\"ref\",\"ref\":\"hotel.reservation\",\"indexed\":true},"
     " {\"name\":\"points\",\"kind\":\"int\",\"required\":true,"
     "  \"label\":\"Points (+ earned, - redeemed)\"},"
     " {\"name\":\"kind\",\"kind\":\"enum\",\"values\":[\"earn\",\"redeem\",\"adjust\"],"
     "  \"default\":\"earn\",\"indexed\":true},"
     " {\"name\":\"reason\",\"kind\":\"text\",\"required\":true,\"max_length\":500}]"},
};

#define RW(r, c, u, d) "{\"read\":\"" r "\",\"create\":\"" c "\",\"update\":\"" u "\",\"delete\":\"" d "\"}"
#define READ_ONLY RW("all", "none", "none", "none")
#define ALL RW("all", "all", "all", "all")

/*
 * Default roles: {role, description, grants}. Admins change them through
 * /api/v1/roles/{id}/grants; a later start keeps their changes.
 */
static const crm_util_role_spec roles[] = {
    {"front desk", "books, checks guests in and out, charges services",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.contact\":" RW("all", "all", "all", "none") ","
     " \"crm.ticket\":" RW("all", "all", "all", "none") ","
     " \"crm.message\":" RW("all", "all", "none", "none") ","
     " \"hotel.room_type\":" READ_ONLY ","
     " \"hotel.rate\":" READ_ONLY ","
     " \"hotel.room\":" RW("all", "none", "all", "none") ","
     " \"hotel.guest\":" RW("all", "all", "all", "none") ","
     " \"hotel.reservation\":" RW("all", "all", "all", "none") ","
     " \"hotel.night\":" RW("all", "all", "all", "all") ","
     " \"hotel.service\":" READ_ONLY ","
     " \"hotel.charge\":" RW("all", "all", "all", "none") ","
     " \"hotel.loyalty_entry\":" RW("all", "all", "none", "none") "}"},
    {"housekeeping", "sees rooms and arrivals, marks rooms clean or out of service",
     "{\"hotel.room_type\":" READ_ONLY ","
     " \"hotel.room\":" RW("all", "none", "all", "none") ","
     " \"hotel.reservation\":" READ_ONLY ","
     " \"hotel.night\":" READ_ONLY "}"},
    {"hotel manager", "runs the hotel: rooms, rates, services, every stay, the reports",
     "{\"core.user\":" READ_ONLY ","
     " \"crm.contact\":" RW("all", "all", "all", "none") ","
     " \"crm.ticket\":" RW("all", "all", "all", "none") ","
     " \"crm.message\":" RW("all", "all", "none", "none") ","
     " \"hotel.room_type\":" ALL ","
     " \"hotel.rate\":" ALL ","
     " \"hotel.room\":" ALL ","
     " \"hotel.guest\":" ALL ","
     " \"hotel.reservation\":" ALL ","
     " \"hotel.night\":" ALL ","
     " \"hotel.service\":" ALL ","
     " \"hotel.charge\":" ALL ","
     " \"hotel.loyalty_entry\":" ALL "}"},
};

int hotelp_types_init(void)
{
    int rc = crm_util_declare_types(hotelp_host, hotelp_self, types,
                                    sizeof types / sizeof types[0]);
    if (rc == CRM_OK)
        rc = crm_util_declare_roles(hotelp_host, hotelp_self, roles,
                                    sizeof roles / sizeof roles[0]);
    return rc;
}
