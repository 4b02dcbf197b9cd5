import Foundation
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@Suite struct APIKeyTests {
    @Test func generatedKeys_haveThePrefix_and190BitsOfBase62() {
        let keys = (0..<200).map { _ in APIKeys.generate(mode: .live) }
        #expect(Set(keys).count == 200)
        for key in keys {
            #expect(key.hasPrefix("tg_live_"))
            #expect(key.count == 40)
            #expect(APIKeys.isWellFormed(key))
        }
        #expect(APIKeys.generate(mode: .test).hasPrefix("tg_test_"))
        // 32 characters of a 62-letter alphabet: log2(62) * 32 ≈ 190.5 bits.
        #expect(log2(62.0) * 32 >= 160)
    }

    @Test(arguments: [
        "", "tg_live_", "tg_live_short", "tg_prod_" + String(repeating: "a", count: 32), "tg_live_" + String(repeating: "-", count: 32),
    ])
    func malformedKeys_areRecognised(_ text: String) {
        #expect(!APIKeys.isWellFormed(text))
    }

    @Test func hashes_dependOnThePepper() throws {
        let key = APIKeys.generate(mode: .live)
        let a = try APIKeys(pepper: String(repeating: "a", count: 32))
        let b = try APIKeys(pepper: String(repeating: "b", count: 32))
        #expect(a.hash(key) == a.hash(key))
        #expect(a.hash(key) != b.hash(key))
        #expect(a.hash(key).count == 64)
        #expect(throws: TollgateError.self) { try APIKeys(pepper: "short") }
    }
}
