import Foundation
import Testing
@testable import TallyRemote

/// AWS Signature Version 4 against AWS's own worked example ("GET Object" in the S3 SigV4
/// documentation: examplebucket, test.txt, bytes 0–9, 2013-05-24), and the encodings it relies on.
@Suite struct SigV4Tests {
    @Test func awsDocumentationExample() {
        let config = S3Config(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        let headers = SigV4.sign(method: "GET", url: URL(string: "https://examplebucket.s3.amazonaws.com/test.txt")!,
                                 config: config, date: date, extra: [("Range", "bytes=0-9")],
                                 payloadHash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let authorization = headers.first { $0.0 == "authorization" }?.1
        #expect(authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func encodingAndQueries() {
        #expect(SigV4.encode("a b/c~d*é", keepSlash: true) == "a%20b/c~d%2A%C3%A9")
        #expect(SigV4.encode("x/y", keepSlash: false) == "x%2Fy")
        #expect(SigV4.canonicalQuery(URL(string: "https://h/b?prefix=p%2F&list-type=2")!) == "list-type=2&prefix=p%2F")
        #expect(SigV4.hostHeader(URL(string: "http://127.0.0.1:9000/b")!) == "127.0.0.1:9000")
        #expect(SigV4.hostHeader(URL(string: "https://s3.amazonaws.com/b")!) == "s3.amazonaws.com")
    }
}
