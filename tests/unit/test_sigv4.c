/* test_sigv4.c — AWS Signature Version 4 against AWS's published vectors.
 *
 * S3: the four examples of "Signature Calculations for the Authorization
 * Header: Transferring Payload in a Single Chunk" (AmazonS3/latest/API/
 * sig-v4-header-based-auth.html). AWS prints those Authorization headers
 * with "," between the parts; this module writes ", " like the SigV4 test
 * suite does (both are accepted), the signatures are the published ones.
 *
 * Generic: AWS's SigV4 test suite (service "service", us-east-1, 2015-08-30),
 * as shipped in awslabs/aws-c-auth tests/aws-signing-test-suite/v4/<name>/
 * (request.txt, header-canonical-request.txt, header-string-to-sign.txt,
 * header-signed-request.txt) and, for get-vanilla-query-order-value, the
 * original aws-sig-v4-test-suite (<name>.req/.creq/.sts/.authz). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/sigv4.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct creds {
    const char *akid, *secret, *region, *service, *amz_date;
};

static const struct creds s3_creds = {"AKIAIOSFODNN7EXAMPLE",
                                      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3",
                                      "20130524T000000Z"};
static const struct creds suite_creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                         "us-east-1", "service", "20150830T123600Z"};

struct vector {
    const char *name;
    const struct creds *c;
    const char *method;
    const char *uri; /* as given to sigv4_req, or raw when encode_uri */
    bool encode_uri; /* run uri through sigv4_uri_encode(keep_slash) first */
    const char *query;
    struct sigv4_header headers[6];
    size_t n_headers;
    const char *payload_hash;
    const char *creq, *sts, *authz;
};

static const struct vector vectors[] = {
    /* ---- S3 documentation examples ---- */
    {
        .name = "s3 GET Object",
        .c = &s3_creds,
        .method = "GET",
        .uri = "/test.txt",
        .headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"Range", "bytes=0-9"},
                    {"x-amz-content-sha256", EMPTY_SHA256},
                    {"x-amz-date", "20130524T000000Z"}},
        .n_headers = 4,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/test.txt\n"
                "\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "range:bytes=0-9\n"
                "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                "x-amz-date:20130524T000000Z\n"
                "\n"
                "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20130524T000000Z\n"
               "20130524/us-east-1/s3/aws4_request\n"
               "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    },
    {
        .name = "s3 PUT Object",
        .c = &s3_creds,
        .method = "PUT",
        .uri = "/test$file.text",
        .encode_uri = true,
        .headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                    {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                    {"x-amz-content-sha256",
                     "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"}},
        .n_headers = 5,
        .payload_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        .creq = "PUT\n"
                "/test%24file.text\n"
                "\n"
                "date:Fri, 24 May 2013 00:00:00 GMT\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:"
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
                "x-amz-date:20130524T000000Z\n"
                "x-amz-storage-class:REDUCED_REDUNDANCY\n"
                "\n"
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        .sts = "AWS4-HMAC-SHA256\n"
               "20130524T000000Z\n"
               "20130524/us-east-1/s3/aws4_request\n"
               "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, "
                 "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
                 "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    },
    {
        .name = "s3 GET Bucket Lifecycle",
        .c = &s3_creds,
        .method = "GET",
        .uri = "/",
        .query = "lifecycle",
        .headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-content-sha256", EMPTY_SHA256}},
        .n_headers = 3,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "lifecycle=\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                "x-amz-date:20130524T000000Z\n"
                "\n"
                "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20130524T000000Z\n"
               "20130524/us-east-1/s3/aws4_request\n"
               "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                 "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    },
    {
        .name = "s3 GET Bucket (List Objects)",
        .c = &s3_creds,
        .method = "GET",
        .uri = "/",
        .query = "max-keys=2&prefix=J",
        .headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"x-amz-date", "20130524T000000Z"},
                    {"x-amz-content-sha256", EMPTY_SHA256}},
        .n_headers = 3,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "max-keys=2&prefix=J\n"
                "host:examplebucket.s3.amazonaws.com\n"
                "x-amz-content-sha256:" EMPTY_SHA256 "\n"
                "x-amz-date:20130524T000000Z\n"
                "\n"
                "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20130524T000000Z\n"
               "20130524/us-east-1/s3/aws4_request\n"
               "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
                 "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    },

    /* ---- SigV4 test suite ---- */
    {
        .name = "get-vanilla",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    {
        .name = "get-vanilla-query-order-key-case",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .query = "Param2=value2&Param1=value1",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "Param1=value1&Param2=value2\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    {
        .name = "get-vanilla-query-order-value",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .query = "Param1=value2&Param1=value1",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "Param1=value1&Param1=value2\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    },
    {
        .name = "get-vanilla-query-order-encoded",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .query = "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "%E1%88%B4=Value1&Param=Value2&Param-3=Value3\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
    },
    {
        .name = "get-vanilla-utf8-query",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .query = "\xE1\x88\xB4"
                 "=bar",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "%E1%88%B4=bar\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    },
    {
        .name = "get-vanilla-query-unreserved",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .query = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                 "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    {
        .name = "get-header-value-trim",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .headers = {{"Host", "example.amazonaws.com"},
                    {"My-Header1", " value1"},
                    {"My-Header2", " \"a   b   c\""},
                    {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 4,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "\n"
                "host:example.amazonaws.com\n"
                "my-header1:value1\n"
                "my-header2:\"a b c\"\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                 "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    {
        .name = "get-header-key-duplicate",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .headers = {{"Host", "example.amazonaws.com"},
                    {"My-Header1", "value2"},
                    {"My-Header1", "value2"},
                    {"My-Header1", "value1"},
                    {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 5,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "\n"
                "host:example.amazonaws.com\n"
                "my-header1:value2,value2,value1\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;my-header1;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;my-header1;x-amz-date, "
                 "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    },
    {
        .name = "get-header-value-multiline",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/",
        .headers = {{"Host", "example.amazonaws.com"},
                    {"My-Header1", "value1\n  value2\n     value3"},
                    {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 3,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/\n"
                "\n"
                "host:example.amazonaws.com\n"
                "my-header1:value1 value2 value3\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;my-header1;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;my-header1;x-amz-date, "
                 "Signature=cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd",
    },
    {
        .name = "post-x-www-form-urlencoded",
        .c = &suite_creds,
        .method = "POST",
        .uri = "/",
        .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                    {"Host", "example.amazonaws.com"},
                    {"Content-Length", "13"},
                    {"X-Amz-Date", "20150830T123600Z"},
                    {"x-amz-content-sha256",
                     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
        .n_headers = 5,
        .payload_hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        .creq = "POST\n"
                "/\n"
                "\n"
                "content-length:13\n"
                "content-type:application/x-www-form-urlencoded\n"
                "host:example.amazonaws.com\n"
                "x-amz-content-sha256:"
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, "
                 "Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
    {
        .name = "get-space-normalized",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/example space/",
        .encode_uri = true,
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/example%20space/\n"
                "\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    },
    {
        .name = "get-utf8",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/\xE1\x88\xB4",
        .encode_uri = true,
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/%E1%88%B4\n"
                "\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    {
        .name = "get-unreserved",
        .c = &suite_creds,
        .method = "GET",
        .uri = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        .encode_uri = true,
        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
        .n_headers = 2,
        .payload_hash = EMPTY_SHA256,
        .creq = "GET\n"
                "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n"
                "\n"
                "host:example.amazonaws.com\n"
                "x-amz-date:20150830T123600Z\n"
                "\n"
                "host;x-amz-date\n" EMPTY_SHA256,
        .sts = "AWS4-HMAC-SHA256\n"
               "20150830T123600Z\n"
               "20150830/us-east-1/service/aws4_request\n"
               "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
        .authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                 "SignedHeaders=host;x-amz-date, "
                 "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    },
};

/* A request for v with its signing key in key and its URI in uri (which
 * holds the encoded URI when v->encode_uri). */
static struct sigv4_req make_req(const struct vector *v, unsigned char key[SIGV4_KEY_LEN],
                                 struct sbuf *uri)
{
    const struct creds *c = v->c;
    assert_int_equal(sigv4_signing_key(c->secret, c->amz_date, c->region, c->service, key), 0);
    const char *u = v->uri;
    if (v->encode_uri) {
        assert_int_equal(sigv4_uri_encode(uri, v->uri, strlen(v->uri), true), 0);
        u = uri->s;
    }
    return (struct sigv4_req){
        .method = v->method,
        .uri = u,
        .query = v->query,
        .headers = v->headers,
        .n_headers = v->n_headers,
        .payload_hash = v->payload_hash,
        .access_key_id = c->akid,
        .signing_key = key,
        .amz_date = c->amz_date,
        .region = c->region,
        .service = c->service,
    };
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SONDE_ARRAY_LEN(vectors); i++) {
        const struct vector *v = &vectors[i];
        print_message("%s\n", v->name);
        unsigned char key[SIGV4_KEY_LEN];
        struct sbuf uri = {0}, b = {0};
        struct sigv4_req r = make_req(v, key, &uri);

        assert_int_equal(sigv4_canonical_request(&b, &r), 0);
        assert_string_equal(b.s, v->creq);
        b.len = 0;
        assert_int_equal(sigv4_string_to_sign(&b, &r), 0);
        assert_string_equal(b.s, v->sts);
        b.len = 0;
        assert_int_equal(sigv4_authorization(&b, &r), 0);
        assert_string_equal(b.s, v->authz);

        /* the signature alone, with scratch space that already holds text */
        char sig[SIGV4_SIG_HEX_LEN + 1];
        assert_int_equal(sigv4_signature(&b, &r, sig), 0);
        assert_string_equal(b.s, v->authz); /* scratch left as it was */
        assert_string_equal(sig, strstr(v->authz, "Signature=") + strlen("Signature="));

        /* appending after existing text, in a buffer reused across calls */
        b.len = 0;
        assert_int_equal(sbuf_puts(&b, "Authorization: "), 0);
        assert_int_equal(sigv4_authorization(&b, &r), 0);
        assert_true(str_startswith(b.s, "Authorization: "));
        assert_string_equal(b.s + strlen("Authorization: "), v->authz);

        sbuf_free(&b);
        sbuf_free(&uri);
    }
}

/* The payload hashes used above are those of the published bodies. */
static void test_payload_hashes(void **state)
{
    (void)state;
    char hex[65];
    sha256_hex("Welcome to Amazon S3.", strlen("Welcome to Amazon S3."), hex);
    assert_string_equal(hex, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    sha256_hex("Param1=value1", strlen("Param1=value1"), hex);
    assert_string_equal(hex, "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
    sha256_hex("", 0, hex);
    assert_string_equal(hex, EMPTY_SHA256);
}

static void key_hex(const unsigned char key[SIGV4_KEY_LEN], char out[2 * SIGV4_KEY_LEN + 1])
{
    for (int i = 0; i < SIGV4_KEY_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", key[i]);
}

/* AWS General Reference, "Examples of how to derive a signing key": secret
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam. */
static void test_signing_key(void **state)
{
    (void)state;
    unsigned char key[SIGV4_KEY_LEN], key2[SIGV4_KEY_LEN];
    char hex[2 * SIGV4_KEY_LEN + 1];
    assert_int_equal(sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215",
                                       "us-east-1", "iam", key),
                     0);
    key_hex(key, hex);
    assert_string_equal(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    /* an amz date gives the same key as its date */
    assert_int_equal(sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                       "20120215T235959Z", "us-east-1", "iam", key2),
                     0);
    assert_memory_equal(key, key2, SIGV4_KEY_LEN);

    /* a secret longer than an HMAC block is hashed first, and still works */
    char longsecret[200];
    memset(longsecret, 'k', sizeof(longsecret) - 1);
    longsecret[sizeof(longsecret) - 1] = '\0';
    assert_int_equal(sigv4_signing_key(longsecret, "20120215", "us-east-1", "iam", key2), 0);
    assert_memory_not_equal(key, key2, SIGV4_KEY_LEN);

    assert_int_equal(sigv4_signing_key(NULL, "20120215", "us-east-1", "iam", key), -EINVAL);
    for (int i = 0; i < SIGV4_KEY_LEN; i++)
        assert_int_equal(key[i], 0); /* zeroed on error */
    assert_int_equal(sigv4_signing_key("s", NULL, "us-east-1", "iam", key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "2012021", "us-east-1", "iam", key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "2012-02-15", "us-east-1", "iam", key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "20120215", "", "iam", key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "20120215", "us-east-1", NULL, key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "20120215", "us/east", "iam", key), -EINVAL);
    assert_int_equal(sigv4_signing_key("s", "20120215", "us-east-1", "iam", NULL), -EINVAL);
}

static void test_amz_date(void **state)
{
    (void)state;
    char buf[17];
    static const struct {
        int64_t t;
        const char *s;
    } cases[] = {
        {1440938160, "20150830T123600Z"},
        {1369353600, "20130524T000000Z"},
        {0, "19700101T000000Z"},
        {951782400, "20000229T000000Z"},
        {4107542399LL, "21000228T235959Z"},
        {-1, "19691231T235959Z"},
        {-86401, "19691230T235959Z"},
        {253402300799LL, "99991231T235959Z"},
        {-62167219200LL, "00000101T000000Z"},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(cases); i++) {
        assert_int_equal(sigv4_amz_date(cases[i].t, buf), 0);
        assert_string_equal(buf, cases[i].s);
    }
    assert_int_equal(sigv4_amz_date(253402300800LL, buf), -ERANGE);
    assert_string_equal(buf, "");
    assert_int_equal(sigv4_amz_date(-62167219201LL, buf), -ERANGE);

    /* every day from 1900 to 2400 against the C library */
    for (int64_t d = -25567; d < 157045; d++) {
        int64_t t = d * 86400 + (d * 7919) % 86400;
        time_t tt = (time_t)t;
        struct tm tm;
        char want[17];
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof(want), "%Y%m%dT%H%M%SZ", &tm);
        assert_int_equal(sigv4_amz_date(t, buf), 0);
        assert_string_equal(buf, want);
    }
}

static void encode(const char *s, bool keep_slash, const char *want)
{
    struct sbuf b = {0};
    assert_int_equal(sigv4_uri_encode(&b, s, strlen(s), keep_slash), 0);
    assert_string_equal(b.s ? b.s : "", want);
    sbuf_free(&b);
}

static void test_uri_encode(void **state)
{
    (void)state;
    encode("a b", false, "a%20b");
    encode("/photos/my file.jpg", true, "/photos/my%20file.jpg");
    encode("/photos/my file.jpg", false, "%2Fphotos%2Fmy%20file.jpg");
    encode("~-._AZaz09", false, "~-._AZaz09");
    encode("caf\xC3\xA9", true, "caf%C3%A9");
    encode("test$file.text", true, "test%24file.text");
    encode("a+b=c&d*e%f", false, "a%2Bb%3Dc%26d%2Ae%25f");
    encode("\x7f\x01", false, "%7F%01");
    encode("", false, "");

    /* appends; embedded NULs are data */
    struct sbuf b = {0};
    assert_int_equal(sbuf_puts(&b, "x="), 0);
    assert_int_equal(sigv4_uri_encode(&b, "a\0b", 3, false), 0);
    assert_string_equal(b.s, "x=a%00b");
    assert_int_equal(sigv4_uri_encode(&b, NULL, 0, false), 0);
    assert_int_equal(sigv4_uri_encode(&b, NULL, 1, false), -EINVAL);
    assert_int_equal(sigv4_uri_encode(NULL, "a", 1, false), -EINVAL);
    assert_string_equal(b.s, "x=a%00b");
    sbuf_free(&b);

    /* a full buffer is left as it was */
    struct sbuf small = {.max = 8};
    assert_int_equal(sbuf_puts(&small, "abc"), 0);
    assert_int_equal(sigv4_uri_encode(&small, "  ", 2, false), -ENOSPC);
    assert_string_equal(small.s, "abc");
    assert_int_equal(small.len, 3);
    sbuf_free(&small);
}

/* The canonical query line for query. */
static void canon_query(const char *query, const char *want)
{
    static const struct sigv4_header h[] = {{"host", "h"}};
    struct sigv4_req r = {.method = "GET",
                          .uri = "",
                          .query = query,
                          .headers = h,
                          .n_headers = 1,
                          .payload_hash = "UNSIGNED-PAYLOAD"};
    struct sbuf b = {0};
    assert_int_equal(sigv4_canonical_request(&b, &r), 0);
    char *line = strchr(strchr(b.s, '\n') + 1, '\n') + 1; /* third line */
    assert_true(str_startswith(b.s, "GET\n/\n"));         /* "" is "/" */
    *strchr(line, '\n') = '\0';
    assert_string_equal(line, want);
    sbuf_free(&b);
}

static void test_query(void **state)
{
    (void)state;
    canon_query(NULL, "");
    canon_query("", "");
    canon_query("&&", "");
    canon_query("lifecycle", "lifecycle=");
    canon_query("b=2&&a=1&", "a=1&b=2");
    canon_query("a-b=1&a=2", "a=2&a-b=1");   /* by name first, not by "name=value" */
    canon_query("k=b&k=a&k=", "k=&k=a&k=b"); /* then by value */
    canon_query("p=%7e%2f%2F", "p=~%2F%2F"); /* decoded and encoded again */
    canon_query("p=a+b c", "p=a%2Bb%20c");   /* '+' is a plus, raw bytes get encoded */
    canon_query("p=100%&q=%zz%4", "p=100%25&q=%25zz%254"); /* a stray '%' is data */
    canon_query("prefix=photos/2006/&delimiter=/",
                "delimiter=%2F&prefix=photos%2F2006%2F"); /* S3 list */
    canon_query("uploadId=abc.def~1&partNumber=7", "partNumber=7&uploadId=abc.def~1");
    canon_query("a=b=c", "a=b%3Dc"); /* the first '=' separates */
}

static void test_headers(void **state)
{
    (void)state;
    /* mixed case, duplicates not adjacent, tabs, empty values */
    static const struct sigv4_header h[] = {
        {"X-Amz-Meta-B", "\t two\t\twords  "},
        {"host", "example.com"},
        {"X-AMZ-META-A", "1"},
        {"x-amz-meta-a", "  "},
        {"x-amz-meta-a", "3"},
        {"Content-Type", ""},
    };
    struct sigv4_req r = {.method = "PUT",
                          .uri = "/k",
                          .headers = h,
                          .n_headers = 6,
                          .payload_hash = "UNSIGNED-PAYLOAD"};
    struct sbuf b = {0};
    assert_int_equal(sigv4_canonical_request(&b, &r), 0);
    assert_string_equal(b.s, "PUT\n/k\n\n"
                             "content-type:\n"
                             "host:example.com\n"
                             "x-amz-meta-a:1,,3\n"
                             "x-amz-meta-b:two words\n"
                             "\n"
                             "content-type;host;x-amz-meta-a;x-amz-meta-b\n"
                             "UNSIGNED-PAYLOAD");
    sbuf_free(&b);
}

static struct sigv4_req good_req(const unsigned char *key)
{
    static const struct sigv4_header h[] = {{"host", "examplebucket.s3.amazonaws.com"},
                                            {"x-amz-date", "20130524T000000Z"}};
    return (struct sigv4_req){.method = "GET",
                              .uri = "/test.txt",
                              .headers = h,
                              .n_headers = 2,
                              .payload_hash = "UNSIGNED-PAYLOAD",
                              .access_key_id = "AKIAIOSFODNN7EXAMPLE",
                              .signing_key = key,
                              .amz_date = "20130524T000000Z",
                              .region = "us-east-1",
                              .service = "s3"};
}

/* sigv4_authorization and (unless auth_only: a field only it needs)
 * sigv4_signature fail with rc on r, leaving a non-empty buffer as it was. */
static void expect_fail_in(const struct sigv4_req *r, int rc, bool auth_only)
{
    struct sbuf b = {0};
    char sig[SIGV4_SIG_HEX_LEN + 1];
    assert_int_equal(sbuf_puts(&b, "keep"), 0);
    assert_int_equal(sigv4_authorization(&b, r), rc);
    if (!auth_only) {
        assert_int_equal(sigv4_signature(&b, r, sig), rc);
        assert_string_equal(sig, "");
    }
    assert_string_equal(b.s, "keep");
    assert_int_equal(b.len, 4);
    sbuf_free(&b);
}

static void expect_fail(const struct sigv4_req *r, int rc)
{
    expect_fail_in(r, rc, false);
}

static void test_errors(void **state)
{
    (void)state;
    unsigned char key[SIGV4_KEY_LEN] = {1};
    struct sbuf b = {0};
    struct sigv4_req r = good_req(key);
    assert_int_equal(sigv4_authorization(&b, &r), 0); /* the baseline is fine */
    sbuf_free(&b);

    /* too many headers */
    struct sigv4_header many[SIGV4_MAX_HEADERS + 1];
    char names[SIGV4_MAX_HEADERS + 1][16];
    for (size_t i = 0; i < SONDE_ARRAY_LEN(many); i++) {
        snprintf(names[i], sizeof(names[i]), "x-h%zu", i);
        many[i] = (struct sigv4_header){names[i], "v"};
    }
    r.headers = many;
    r.n_headers = SIGV4_MAX_HEADERS;
    assert_int_equal(sigv4_authorization(&b, &r), 0);
    sbuf_free(&b);
    r.n_headers = SIGV4_MAX_HEADERS + 1;
    expect_fail(&r, -E2BIG);
    assert_int_equal(sigv4_canonical_request(&b, &r), -E2BIG);
    assert_null(b.s);

    /* too many query parameters */
    r = good_req(key);
    struct sbuf q = {0};
    for (int i = 0; i < SIGV4_MAX_QUERY; i++)
        assert_int_equal(sbuf_printf(&q, "%sp%d=%d", i ? "&" : "", i, i), 0);
    r.query = q.s;
    assert_int_equal(sigv4_authorization(&b, &r), 0);
    sbuf_free(&b);
    assert_int_equal(sbuf_puts(&q, "&one=more"), 0);
    r.query = q.s;
    expect_fail(&r, -E2BIG);
    sbuf_free(&q);

    /* missing or malformed fields */
#define BAD(field, val)                                                                            \
    do {                                                                                           \
        r = good_req(key);                                                                         \
        r.field = val;                                                                             \
        expect_fail(&r, -EINVAL);                                                                  \
    } while (0)
    BAD(method, NULL);
    BAD(method, "");
    BAD(method, "GET ");
    BAD(uri, NULL);
    BAD(uri, "test.txt");
    BAD(uri, "/my file");
    BAD(uri, "/a?b=c");
    BAD(uri, "/caf\xC3\xA9");
    BAD(headers, NULL);
    BAD(payload_hash, NULL);
    BAD(payload_hash, "");
    r = good_req(key);
    r.access_key_id = NULL;
    expect_fail_in(&r, -EINVAL, true);
    r.access_key_id = "AKID\r\nX-Injected: 1";
    expect_fail_in(&r, -EINVAL, true);
    r.access_key_id = "AKID/20130524";
    expect_fail_in(&r, -EINVAL, true);
    BAD(signing_key, NULL);
    BAD(amz_date, NULL);
    BAD(amz_date, "20130524");
    BAD(amz_date, "2013-05-24T00:00:00Z");
    BAD(amz_date, "20130524T000000Z0");
    BAD(region, NULL);
    BAD(region, "");
    BAD(service, NULL);
    BAD(service, "s3/x");
#undef BAD

    static const struct sigv4_header bad_names[][1] = {
        {{NULL, "v"}},  {{"", "v"}},    {{"my header", "v"}},
        {{"a:b", "v"}}, {{"a;b", "v"}}, {{"host", NULL}},
    };
    for (size_t i = 0; i < SONDE_ARRAY_LEN(bad_names); i++) {
        r = good_req(key);
        r.headers = bad_names[i];
        r.n_headers = 1;
        expect_fail(&r, -EINVAL);
    }

    r = good_req(key);
    assert_int_equal(sigv4_canonical_request(NULL, &r), -EINVAL);
    assert_int_equal(sigv4_canonical_request(&b, NULL), -EINVAL);
    assert_int_equal(sigv4_string_to_sign(NULL, &r), -EINVAL);
    assert_int_equal(sigv4_string_to_sign(&b, NULL), -EINVAL);
    assert_int_equal(sigv4_authorization(NULL, &r), -EINVAL);
    assert_int_equal(sigv4_authorization(&b, NULL), -EINVAL);
    char sig[SIGV4_SIG_HEX_LEN + 1];
    assert_int_equal(sigv4_signature(NULL, &r, sig), -EINVAL);
    assert_int_equal(sigv4_signature(&b, &r, NULL), -EINVAL);
    assert_null(b.s);

    /* the canonical request needs no credentials, the string to sign no key */
    r.access_key_id = NULL;
    r.signing_key = NULL;
    assert_int_equal(sigv4_string_to_sign(&b, &r), 0);
    r.amz_date = NULL;
    assert_int_equal(sigv4_string_to_sign(&b, &r), -EINVAL);
    b.len = 0;
    assert_int_equal(sigv4_canonical_request(&b, &r), 0);
    sbuf_free(&b);

    /* out of room: the buffer is left as it was */
    r = good_req(key);
    struct sbuf small = {.max = 64};
    assert_int_equal(sbuf_puts(&small, "keep"), 0);
    assert_int_equal(sigv4_authorization(&small, &r), -ENOSPC);
    assert_int_equal(sigv4_canonical_request(&small, &r), -ENOSPC);
    assert_string_equal(small.s, "keep");
    assert_int_equal(small.len, 4);
    sbuf_free(&small);
}

/* Threads sign concurrently (each has its own digest context). */
static void *sign_many(void *arg)
{
    const struct vector *v = arg;
    unsigned char key[SIGV4_KEY_LEN];
    struct sbuf uri = {0}, b = {0};
    struct sigv4_req r = make_req(v, key, &uri);
    bool ok = true;
    for (int i = 0; i < 2000 && ok; i++) {
        b.len = 0;
        ok = sigv4_authorization(&b, &r) == 0 && strcmp(b.s, v->authz) == 0;
    }
    sbuf_free(&b);
    sbuf_free(&uri);
    return ok ? arg : NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t th[8];
    for (size_t i = 0; i < SONDE_ARRAY_LEN(th); i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, sign_many, (void *)&vectors[i % SONDE_ARRAY_LEN(vectors)]),
            0);
    for (size_t i = 0; i < SONDE_ARRAY_LEN(th); i++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_ptr_equal(ret, &vectors[i % SONDE_ARRAY_LEN(vectors)]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),     cmocka_unit_test(test_payload_hashes),
        cmocka_unit_test(test_signing_key), cmocka_unit_test(test_amz_date),
        cmocka_unit_test(test_uri_encode),  cmocka_unit_test(test_query),
        cmocka_unit_test(test_headers),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
