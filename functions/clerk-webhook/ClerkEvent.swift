import Foundation
import TollgateModel

/// A verified Clerk webhook event, as Clerk's body carries it: `{"data": {…}, "object":
/// "event", "type": "user.created", "timestamp": <ms>, "instance_id": "ins_…"}`.
/// <https://clerk.com/docs/webhooks/overview>
struct ClerkEvent: Sendable {
    /// What the event changes.
    enum Change: Sendable, Hashable {
        case user(id: String, deleted: Bool)
        case organization(id: String, deleted: Bool)
        case membership(organizationId: String, userId: String, role: String, deleted: Bool)
    }

    static let userTypes: Set<String> = ["user.created", "user.updated", "user.deleted"]
    static let organizationTypes: Set<String> = ["organization.created", "organization.updated", "organization.deleted"]
    static let membershipTypes: Set<String> = [
        "organizationMembership.created", "organizationMembership.updated", "organizationMembership.deleted",
    ]

    var type: String
    /// Milliseconds since the epoch: the body's `timestamp`, else (payloads from before Clerk
    /// added it) the object's `updated_at`, else the Svix timestamp.
    var timestamp: Int64
    /// nil for a type Tollgate does not act on (sessions, emails, invitations…).
    var change: Change?

    /// - Throws: `INVALID_ARGUMENT` naming what is wrong: poison, dead-lettered.
    init(json body: Data, svixTimestamp: Int64) throws {
        guard let event = try? JSONValue.parse(body), event.objectValue != nil else {
            throw TollgateError(.invalidArgument, "the body is not a JSON object")
        }
        guard event["object"]?.stringValue == "event", let type = event["type"]?.stringValue, !type.isEmpty else {
            throw TollgateError(.invalidArgument, "not a Clerk event: want object \"event\" and a type")
        }
        guard let data = event["data"], data.objectValue != nil else {
            throw TollgateError(.invalidArgument, "\(type) has no data object")
        }
        self.type = type
        let timestamp = event["timestamp"]?.integerValue ?? data["updated_at"]?.integerValue ?? svixTimestamp * 1_000
        guard InputBounds.clerkEventMilliseconds.contains(timestamp) else {
            throw TollgateError(.invalidArgument, "\(type) has a timestamp outside 2000-01-01…9999-12-31")
        }
        self.timestamp = timestamp
        let deleted = type.hasSuffix(".deleted")
        if Self.userTypes.contains(type) {
            change = .user(id: try Self.identifier(data["id"], "data.id", type), deleted: deleted)
        } else if Self.organizationTypes.contains(type) {
            change = .organization(id: try Self.identifier(data["id"], "data.id", type), deleted: deleted)
        } else if Self.membershipTypes.contains(type) {
            // Clerk sends the whole membership on every type, deletion included.
            let organization = try Self.identifier(data["organization"]?["id"], "data.organization.id", type)
            let user = try Self.identifier(data["public_user_data"]?["user_id"], "data.public_user_data.user_id", type)
            guard let role = data["role"]?.stringValue, InputBounds.identifierLength.contains(role.utf8.count),
                role.utf8.allSatisfy({ (33...126).contains($0) })
            else {
                throw TollgateError(.invalidArgument, "\(type) has no usable data.role")
            }
            change = .membership(organizationId: organization, userId: user, role: role, deleted: deleted)
        } else {
            change = nil
        }
    }

    static func identifier(_ value: JSONValue?, _ field: String, _ type: String) throws -> String {
        guard let id = value?.stringValue, InputBounds.isIdentifier(id) else {
            throw TollgateError(.invalidArgument, "\(type) has no usable \(field) (1–128 of A–Z a–z 0–9 _ -)")
        }
        return id
    }

    /// The user, organization or `org/user` membership the event concerns.
    var subject: String {
        switch change {
        case .user(let id, _), .organization(let id, _): id
        case .membership(let organization, let user, _, _): "\(organization)/\(user)"
        case nil: ""
        }
    }
}
