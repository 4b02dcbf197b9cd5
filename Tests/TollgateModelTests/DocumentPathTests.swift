import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

/// Firestore's rules for document paths. (The `DocumentStore` port's behaviour is in
/// `DocumentStoreContractTests`, the other ports' in their contract suites.)
@Suite struct DocumentPathTests {
    @Test(arguments: ["accounts", "accounts/a/b", "accounts/..", "accounts/__reserved__", "/accounts/a"])
    func documentPath_refusesWhatFirestoreRefuses(_ text: String) async {
        await expectCode(.invalidArgument) { try DocumentPath(text) }
    }
}
