import Foundation
import Testing
import TollgateGoogle
import TollgateModel
import TollgateTestSupport

/// The runbook's commands on a `firestore://` store (Google's Firestore emulator standing
/// in for production): what an operator runs against the real store works through the
/// same drivers the functions use.
@Suite(Peer.firestoreEmulator.trait) struct OperatorCommandsOnFirestoreTests {
    @Test func deadLettersList_andKeys_workOnFirestore() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let url = "firestore://\(firestore.project)"
        let environment = [
            "FIRESTORE_EMULATOR_HOST": firestore.host, "TOLLGATE_STORE": url,
            "TOLLGATE_KEY_PEPPER": "operator-test-pepper-0123456789abcdef",
        ]
        let store = try GoogleCloud(environment: environment).firestore(url)
        let letter = DeadLetter(
            function: "stripe-webhook", trigger: "http", reason: "price price_x is not mapped", body: Data("{}".utf8),
            metadata: ["header:Content-Type": "application/json"], received: Timestamp(secondsSinceEpoch: 1_767_225_600))
        try await store.create(
            try DocumentPath(collection: DeadLetter.collection, id: "stripe-webhook-0a1b"), try FieldValueEncoder().encode(letter))

        let (listed, output, errors) = try runTollgate(["dead-letters", "list", "--store", url], environment: environment)
        #expect(listed == 0, "\(errors)")
        #expect(
            output.contains("stripe-webhook-0a1b") && output.contains("price price_x is not mapped") && output.contains("1 dead letter"))

        let (created, _, createErrors) = try runTollgate(
            ["keys", "create", "--account", "acct_ops", "--mode", "test"], environment: environment)
        #expect(created == 0, "\(createErrors)")
        let (keysListed, keys, _) = try runTollgate(["keys", "list", "--account", "acct_ops"], environment: environment)
        #expect(keysListed == 0 && keys.contains("tg_test_"), "\(keys)")
    }
}
