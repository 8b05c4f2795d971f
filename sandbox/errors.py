"""The sandbox's error body and the catalogue of numeric API codes.

Every error answers with one body shape (see docs/api-notes.md):

    {"result": 0, "code": 1103, "msg": "...",
     "errors": [{"code": 1103, "field": "email", "msg": "..."}]}

`code`/`msg` repeat the first entry of `errors`, so a caller that reads one code finds it at
the top. Codes the reference documents keep its text; codes it leaves out (auth, not found,
rate limit, seats) are the sandbox's own and are marked "sandbox" in docs/api-notes.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

# Codes that answer 409 Conflict: the object or relation already is (or is not) there.
CONFLICT_CODES = frozenset({1103, 1261, 1260, 1262, 1311, 1333, 1721, 1805, 1810, 2401})

MESSAGES: dict[int, str] = {
    # access
    1000: "Room is not active.",
    1101: "The email field is required.",
    1103: "The email has already been used. Specify a different email address, which is unique.",
    1105: "The email must be a valid email address.",
    1106: "The selected email is invalid.",
    1107: "The email must not be greater than 100 characters.",
    1111: "The first name is required.",
    1112: "First name must be a string.",
    1113: "First name must not be greater than 50 characters.",
    1115: "Middle name must be a string.",
    1116: "Middle name must not be greater than 50 characters.",
    1119: "Last name must be a string.",
    1120: "Last name must not be greater than 50 characters.",
    1121: "The user password must be a string.",
    1122: "The password must be at least 8 characters.",
    1123: "The password field is required.",
    1131: "Status must be a string (A: Active, S: Suspended).",
    1141: "Department must be a string.",
    1142: "Department must not be greater than 100 characters.",
    1145: "Designation must be a string.",
    1146: "Designation must not be greater than 100 characters.",
    1151: "User type is required.",
    1152: "User type must be string (AP : User).",
    1153: "The User type entered is invalid.",
    1161: "Send Welcome email is Boolean (True: send email with login details).",
    1171: "The app field is required.",
    1172: "The selected app is invalid (vc, wb).",
    1173: "The subscription is not for the selected app.",
    1191: "Status is invalid.",
    # subscriptions and licences
    1201: "Customer ID is required.",
    1202: "Customer ID must be a valid string.",
    1211: "Plan ID is required.",
    1212: "Plan ID must be a valid string.",
    1220: "An invalid Subscription ID is used. Use a valid Subscription ID.",
    1221: "The subscription field is required.",
    1228: "Allow meeting to be overlapped with other meetings: Boolean True or False.",
    1229: "Subscription must be an array.",
    1230: "Subscription status must be a valid string.",
    1231: "Subscription status is invalid.",
    1232: "Prepaid is a boolean value (True: Prepaid Subscription).",
    1234: "Customer ID is invalid. Use a valid customer ID.",
    1254: "Number of user licenses must be in integers.",
    1255: "Number of user licenses is required and must be at least 1.",
    1256: "User license price must be stated. Minimum price is 1, maximum price is 100000.",
    1257: "Number of user licenses cannot be lower than the licenses assigned.",
    1260: "License is not assigned. Assign a license.",
    1261: "License is already assigned.",
    1262: "No free user license left in the subscription. Add licenses first.",
    1325: "Plan ID is invalid. Use a valid Plan ID.",
    1326: "Room type is required.",
    1327: "The subscription date is required.",
    1328: "The subscription date must be in the format YYYY-MM-DD.",
    1329: "The subscription date must be future-dated.",
    # customers
    1301: "Customer name is required",
    1302: "Customer name must be a string.",
    1303: "Customer name must not be greater than 100 characters.",
    1305: "Customer legal name is required.",
    1306: "Customer legal name must be a string",
    1307: "Customer type is required ( P:Partner, R:Reseller, T: Top).",
    1308: "The selected customer type is invalid.",
    1309: "Customer code must be a string.",
    1310: "Customer code must not be greater than 50 characters.",
    1311: "Customer code has already been used.",
    1312: "Boolean: True for Individual and false for corporate registrations. Default is false.",
    1321: "Contact name is required.",
    1322: "Contact Name must be a string.",
    1331: "Contact email is required.",
    1332: "Contact email must not be greater than 100 characters.",
    1333: (
        "Contact email must always be unique. A previously used contact email cannot be used again."
    ),
    1334: "Contact email must be a string.",
    1335: "Contact email must be a valid email address.",
    1341: "The Office address object is required.",
    1342: "Office address 1 is required.",
    1343: "Office address 1 must be a string.",
    1344: "Office address 2 is optional. Must be passed as a string.",
    1345: "Office address 3 is optional. Must be a string.",
    1353: "Office address city is Required",
    1354: "Office address city must be a string.",
    1355: "Office address country ID is required. Select the country Id from the country list.",
    1356: "Office address state must be a string.",
    1357: "The selected country ID is invalid.",
    1371: "Billing Address 1 must be a string.",
    1372: "Billing Address 2 must be a string.",
    1373: "Billing Address 3 must be a string.",
    1380: "Billing Address city must be string.",
    1381: "Billing Address state must be a string.",
    1391: "Selected status is invalid.",
    1404: "Subscription ID is required.",
    1405: "Subscription ID must be a string.",
    1408: "Access mail in boolean (true or false).",
    # meetings
    1601: "Meeting Date Time must be future-dated.",
    1602: "Meeting Date Time: Format YYYY-MM-DD HH:ii:ss (In UTC)",
    1603: "Meeting Date Time is required.",
    1604: "A meeting that has started or is over cannot be changed.",
    1611: "Meeting Title is required.",
    1612: "Meeting Title accepts a minimum of 3 characters.",
    1613: "Meeting Title accepts a maximum of 50 characters.",
    1615: "No active meeting subscription.",
    1616: "No active webinar subscription.",
    1617: "Not assigned with Meeting License",
    1618: "Not assigned with Webinar License",
    1621: "Description field is required.",
    1631: "Meeting Duration is required.",
    1632: "Meeting Duration accepts a minimum of 10 minutes.",
    1633: "Meeting Duration exceeded the permissible duration.",
    1634: "Meeting Duration accepts values in number of minutes.",
    1641: "Moderator count is required.",
    1642: "Moderator Count accepts a minimum value of 1.",
    1643: "Moderator Count must not exceed the room size.",
    1644: "Moderator Count accepts values in numbers.",
    1651: "Participant count is required.",
    1652: "Participant Count accepts a minimum value of 0.",
    1653: "Participant Count must not exceed the room size.",
    1654: "Participant Count must be in numbers.",
    1671: "Room name must be a string.",
    1672: "Auto Recording: In Boolean (true, false)",
    1681: "Timezone is required.",
    1684: "Invalid Timezone ID",
    1692: "Send Email accepts a Boolean (true, false) value.",
    1693: "Wait for the moderator accepts a Boolean (true, false) value.",
    1694: "Knock accepts a Boolean (true, false) value.",
    1695: "Invitees must be an array.",
    1696: "Invitee Email Addresses must be an array.",
    1697: "Invitee Contact IDs must be an array.",
    1698: "Invitee Group IDs must be an array.",
    1699: "The X-App-Type header must be vc or wb.",
    1901: "Reset MPIN must be a Boolean (true, false) value.",
    1902: "Reset PPIN must be a Boolean (true, false) value.",
    1903: "MPIN and PPIN are required.",
    # contacts and groups
    1701: "Group IDs must be specified in the form of an array.",
    1702: "The group IDs array must have at least one item in it.",
    1711: "Name is required.",
    1712: "Name must contain a minimum of 3 characters.",
    1713: "Name can contain a maximum 50 characters.",
    1714: "Name must be a string.",
    1715: "Shared must be a Boolean (true, false) value.",
    1721: "This email ID already exists. Use a different email ID.",
    1722: "Email ID must be a valid email address.",
    1723: "Email ID must be a valid string.",
    1724: "Email field is required.",
    1725: "Email can have a maximum of 100 characters.",
    1731: "Company name must be a string.",
    1732: "Company name does not accept more than 100 characters.",
    1733: "Company name must have at least 5 characters.",
    1741: "Designation must be a string.",
    1742: "Designation does not accept more than 100 characters.",
    1743: "Designation must have at least 5 characters.",
    1801: "Group name is required.",
    1802: "Group name must have at least 3 characters.",
    1803: "Group name must be less than 100 characters.",
    1804: "Group name must be a string.",
    1805: "This group name has already been used. Enter a different name for the group.",
    1810: "The group name must be unique and not used.",
    1811: "Contact IDs are required to add contacts to a contact group.",
    1812: "Contact IDs must be specified in the form of an array.",
    1813: "One or more contact IDs are invalid.",
    1818: "An invalid group ID is used.",
    # sessions, branding, lobby
    2001: "At least one of domain, customer_id or meeting_id is required.",
    2101: "The PIN field is required if room ID is not present.",
    2107: "The PIN must be between 6 to 10 characters.",
    2108: "The PIN is invalid.",
    2111: "The name field is required.",
    2112: "The user_ref field is required.",
    2207: "Array of email addresses of the invitees is required.",
    2208: "The invitees must passed as an array.",
    2209: "At least one email invite is required.",
    2210: "Every invitee must be a valid email address.",
    2301: "The login object is required.",
    2302: "The login headline is required.",
    2303: "The login headline must not exceed 100 characters.",
    2304: "The login description must not exceed 256 characters.",
    2305: "Use only one of banner, video_file and video_embed.",
    2306: "The session object is required.",
    2307: "The small session banner is required.",
    2401: "Lobby information already exists. Use PATCH to change it.",
    2402: "Message field is required.",
    2403: "Image field is required.",
    2404: "Audio field is required.",
    2405: "Video field is required.",
    2412: "The Image option must be an array.",
    2421: "The video option must be an array",
    2422: "Message text is required if message is used for lobby.",
    2423: "The options field is required to choose from text, audio, and video.",
    2432: "Message text accepts a minimum of 5 characters.",
    2433: "Message text accepts a maximum of 100 characters.",
    2435: "Image caption must be a string.",
    2438: "Video url must be a string.",
    2453: "The url format should be a valid url string.",
    # lists
    2501: "Page length filter must be passed with an integer.",
    2502: "Page length must be between 1 and 100.",
    2603: "The selected order by is invalid.",
    2604: "The selected order qualify is invalid.",
    2605: "The selected search is invalid.",
    2606: "The search string field is required when search by is present.",
    2607: "The search by field is required when search string is present.",
    2608: "Page number must be a number.",
    2609: "The date filter must be in the format YYYY-MM-DD.",
    # passwords
    3001: "The new password and its retyped copy must match.",
    3011: "The old password and the new password cannot be the same.",
    4201: "Invalid password reset token or reset code.",
    4202: "The email does not match the password reset key.",
    # auth, roles, lookups, protocol (sandbox codes)
    4000: "The request body must be a JSON object.",
    4010: "Authentication failed: missing or invalid credentials.",
    4011: "The access token has expired. Log in again.",
    4012: "Missing or unknown X-Api-Id.",
    4014: "The account is suspended or closed.",
    4030: "Your role cannot access this resource.",
    4040: "The requested object does not exist.",
    4050: "Method not allowed on this route.",
    4290: "Too many requests. Retry after the time given in Retry-After.",
    5000: "Internal server error.",
    5030: "Service temporarily unavailable.",
}


@dataclass(frozen=True)
class FieldError:
    code: int
    field: str | None = None
    msg: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "field": self.field, "msg": self.msg or MESSAGES[self.code]}


@dataclass
class ApiError(Exception):
    """An error answer. `status` defaults from the code: 409 for conflicts, else 400."""

    code: int
    field: str | None = None
    status: int = 0
    msg: str | None = None
    more: list[FieldError] = dc_field(default_factory=list)
    headers: dict[str, str] = dc_field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.status:
            self.status = 409 if self.code in CONFLICT_CODES else 400

    @property
    def errors(self) -> list[FieldError]:
        return [FieldError(self.code, self.field, self.msg), *self.more]

    def body(self) -> dict[str, object]:
        errors = [e.as_dict() for e in self.errors]
        return {"result": 0, "code": self.code, "msg": errors[0]["msg"], "errors": errors}


def not_found(what: str = "object", code: int = 4040) -> ApiError:
    return ApiError(code, status=404, msg=f"The {what} does not exist or is not visible to you.")


def forbidden() -> ApiError:
    return ApiError(4030, status=403)


def unauthorized(code: int = 4010) -> ApiError:
    return ApiError(code, status=401, headers={"WWW-Authenticate": 'Token, Basic realm="ucaas"'})
