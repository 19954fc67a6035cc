"""The hotel plugin loads beside crm: its types and roles exist."""
import hoteltest as H
import lib


def test_types_and_roles(srv):
    names = [t["name"] for t in lib.status(srv.get("/api/v1/types"), 200).json["data"]]
    for t in ("hotel.room_type", "hotel.room", "hotel.guest", "hotel.reservation", "hotel.night",
              "hotel.service", "hotel.charge", "hotel.loyalty_entry", "hotel.rate"):
        lib.ok(t in names, t + " declared")
    for role in ("front desk", "housekeeping", "hotel manager"):
        H.role_id(srv, role)


def shared_server():
    return H.server()


if __name__ == "__main__":
    lib.run(globals(), "test_a_smoke")
