// libcurl for Swift: curl_easy_setopt and curl_easy_getinfo are variadic, which Swift
// cannot call, so each argument type gets a typed inline wrapper.
#ifndef TOLLGATE_CCURL_H
#define TOLLGATE_CCURL_H
#include <curl/curl.h>

typedef size_t (*tollgate_curl_data_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode tollgate_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode tollgate_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode tollgate_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode tollgate_curl_set_large(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode tollgate_curl_set_callback(CURL *handle, CURLoption option, tollgate_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode tollgate_curl_response_code(CURL *handle, long *code) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, code);
}
/// The next finished transfer of a multi handle and its result; NULL when none is left.
/// (CURLMsg carries the result in a union, which Swift reads poorly.)
static inline CURL *tollgate_curl_multi_next_done(CURLM *multi, CURLcode *result) {
    int left = 0;
    CURLMsg *message;
    while ((message = curl_multi_info_read(multi, &left))) {
        if (message->msg == CURLMSG_DONE) {
            *result = message->data.result;
            return message->easy_handle;
        }
    }
    return NULL;
}
#endif
